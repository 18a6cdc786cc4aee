"""The local object storage servers' promises (s3proxy, fake-gcs-server, Azurite): buckets kept
across a restart, a start that fails says why, and nothing left behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from audio.stores import ChunkReader, ChunkWriter, open_chunk_store
from tests.commands import TSTORE, tstore_env
from tests.conftest import UploadingWriter, reach
from tstore.devazure import DevAzure
from tstore.devgcs import DevGcs
from tstore.devs3 import DevS3
from tstore.devserver import ObjectServer

pytestmark = pytest.mark.integration

SERVERS: dict[str, type[DevS3] | type[DevGcs] | type[DevAzure]] = {
    "s3": DevS3,
    "gcs": DevGcs,
    "azure": DevAzure,
}
"""Each server by its ``tstore dev-*`` command's name."""


def _writer(server: ObjectServer, url: str) -> ChunkWriter:
    """fake-gcs-server cannot take obstore's writes (``tstore.devgcs``)."""
    return UploadingWriter(server, url) if isinstance(server, DevGcs) else open_chunk_store(url)


@pytest.mark.parametrize("kind", SERVERS)
def test_a_restarted_server_serves_its_buckets_and_close_leaves_nothing(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SERVERS[kind]()
    try:
        server.start()
        reach(server, monkeypatch)
        url = f"{server.scheme}://{server.create_bucket('kept')}/calls"
        stored = _writer(server, url).put("a/b.wav", b"before the restart")
        assert server.create_bucket("kept") == "kept"  # a second time: still there, untouched

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


@pytest.mark.parametrize("fixture", ["fake_gcs", "azurite"])
def test_a_bucket_name_the_cloud_would_refuse_is_refused_by_its_emulator(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    server: ObjectServer = request.getfixturevalue(fixture)
    with pytest.raises(ValueError, match=r"refused \(400\)"):
        server.create_bucket("Upper Case")


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """The temporary folder in which a server makes its own, to see it gone."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("kind", SERVERS)
def test_tstore_dev_server_says_how_to_reach_it_and_sigterm_leaves_no_folder(
    kind: str, tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with subprocess.Popen(
        [TSTORE, f"dev-{kind}", "--bucket", "calls"],
        env=tstore_env(tmp_path, TMPDIR=str(scratch)),
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        said = [process.stdout.readline()]
        while said[-1] and not said[-1].startswith("  TSTORE_CHUNK_STORE="):
            said.append(process.stdout.readline())
        assert "ready" in said[0]
        settings = dict(line.strip().split("=", 1) for line in said if line.startswith("  "))
        url = settings.pop("TSTORE_CHUNK_STORE")
        kept = SERVERS[kind]
        port = int(settings[kept.endpoint_variable].rsplit(":", 1)[1])
        handle = kept(tmp_path / "handle", port=port)  # on the command's server; never started
        assert url == f"{handle.scheme}://calls/"
        assert settings.keys() == handle.client_env().keys()
        for name in [name for name in os.environ if name.startswith(("AWS_", "GOOGLE_", "AZ"))]:
            monkeypatch.delenv(name)
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        stored = _writer(handle, url).put("a.wav", b"through it")
        assert ChunkReader().read_ranges(stored.uri, [(8, 10)]) == [b"it"]
        assert list(scratch.glob("tstore-*"))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert not list(scratch.glob("tstore-*"))


@pytest.mark.parametrize("kind", SERVERS)
def test_a_server_whose_port_is_taken_says_why_and_leaves_no_folder(
    kind: str, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with (
            pytest.raises(RuntimeError, match="exited with code 1 while starting") as caught,
            SERVERS[kind](port=taken.getsockname()[1]),
        ):
            pass
    assert re.search("bind|in use", str(caught.value))  # each says so in its own words
    assert not list(scratch.iterdir())
