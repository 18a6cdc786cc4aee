"""The local S3 API server's promises: buckets kept across a restart, and nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from audio.stores import ChunkReader, open_chunk_store
from tests.commands import TSTORE, tstore_env
from tests.conftest import reach_s3
from tstore.devs3 import DevS3

pytestmark = pytest.mark.integration


def test_a_restarted_server_serves_its_buckets_and_close_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = DevS3()
    try:
        server.start()
        reach_s3(server, monkeypatch)
        bucket = server.create_bucket("kept")
        stored = open_chunk_store(f"s3://{bucket}/calls").put("a/b.wav", b"before the restart")
        assert (server.buckets_dir / bucket / "calls" / "a" / "b.wav").exists()

        server.stop()
        assert server.pid is None
        server.start()
        assert ChunkReader().read_ranges(stored.uri, [(0, 6)]) == [b"before"]
        running = server.pid
        assert running is not None
    finally:
        server.close()
    assert not Path(f"/proc/{running}").exists() or _zombie(running)
    assert not server.data_dir.exists()


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_bucket_name_s3_would_refuse_is_refused(tmp_path: Path) -> None:
    server = DevS3(tmp_path, libs=tmp_path)
    for bad in ("ab", "Upper", "under_score", "-leading", "a..b", "x" * 64):
        with pytest.raises(ValueError, match="bucket name"):
            server.create_bucket(bad)
    assert server.create_bucket("chunks-1.test") == "chunks-1.test"
    assert (tmp_path / "buckets" / "chunks-1.test").is_dir()
    assert not os.listdir(tmp_path / "buckets" / "chunks-1.test")


def test_tstore_dev_s3_says_how_to_reach_it_and_sigterm_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with subprocess.Popen(
        [TSTORE, "dev-s3", "--bucket", "calls"],
        env=tstore_env(tmp_path, TMPDIR=str(scratch)),
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stdout is not None
        said = [server.stdout.readline() for _ in range(9)]
        assert "ready" in said[0]
        settings = dict(line.strip().split("=", 1) for line in said if line.startswith("  "))
        assert settings["TSTORE_CHUNK_STORE"] == "s3://calls/"
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            monkeypatch.delenv(name)
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        stored = open_chunk_store(settings["TSTORE_CHUNK_STORE"]).put("a.wav", b"through it")
        assert ChunkReader().read_ranges(stored.uri, [(8, 10)]) == [b"it"]
        assert list(scratch.glob("tstore-s3-*"))
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 128 + signal.SIGTERM
    assert not list(scratch.glob("tstore-s3-*"))


def test_a_server_that_cannot_start_says_why_and_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    no_jars = tmp_path / "no-jars"
    no_jars.mkdir()
    with (
        pytest.raises(RuntimeError, match="s3proxy exited with code 1 while starting"),
        DevS3(libs=no_jars),
    ):
        pass
    assert not list(scratch.iterdir())
