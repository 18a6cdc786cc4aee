"""The local S3 API server's promises: buckets kept across a restart, and nothing left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audio.stores import ChunkReader, open_chunk_store
from tests.conftest import reach_s3
from tstore.devs3 import DevS3

pytestmark = pytest.mark.integration


def test_a_restarted_server_serves_its_buckets_and_close_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = DevS3()
    server.start()
    reach_s3(server, monkeypatch)
    bucket = server.create_bucket("kept")
    stored = open_chunk_store(f"s3://{bucket}/calls").put("a/b.wav", b"before the restart")
    assert (server.buckets_dir / bucket / "calls" / "a" / "b.wav").exists()

    server.stop()
    assert server.pid is None
    server.start()
    assert ChunkReader().read_ranges(stored.uri, [(0, 6)]) == [b"before"]

    running, data_dir = server.pid, server.data_dir
    assert running is not None
    server.close()
    assert not Path(f"/proc/{running}").exists() or _zombie(running)
    assert not data_dir.exists()


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
