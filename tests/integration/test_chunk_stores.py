"""Chunk stores against real storage: a local folder and real object storage API servers,
s3proxy (S3), fake-gcs-server (GCS) and Azurite (Azure Blob).

Every promise is held for all: what is put is read back byte for byte by its uri, reads fetch
only the ranges asked (``bytes_read``), and what cannot be read or written says which chunk and
why. fake-gcs-server cannot take obstore's writes (``tstore.devgcs``): there chunks are written
through its JSON API (``UploadingWriter``), ``ChunkStore.put`` is an expected failure, and
the promises of reading hold as everywhere else.
"""

from __future__ import annotations

import base64
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio.stores import (
    SECRET_VARIABLES,
    ChunkReader,
    ChunkUnavailableError,
    ChunkWriteError,
    ChunkWriter,
    open_chunk_store,
)
from tests.conftest import chunk_writer
from tstore.devserver import ObjectServer, free_port

pytestmark = pytest.mark.integration

CHUNK = bytes(range(251)) * 3_825
"""About 30 s of 16 kHz 16-bit mono (960 kB), in a pattern where every offset differs from
its neighbours, so a range read from the wrong place shows."""

SERVERS = {"s3proxy": "s3proxy", "gcs": "fake_gcs", "azurite": "azurite"}
"""Each object storage API server, by the name ``chunk_writer`` knows it, and its fixture."""

GCS_TAKES_NO_PUT = pytest.mark.xfail(
    raises=ChunkWriteError,
    strict=True,
    reason="fake-gcs-server lacks the XML API's object PUT through which obstore writes "
    "(fsouza/fake-gcs-server#331): it answers 400 'invalid uploadType'",
)


@dataclass(frozen=True)
class Store:
    url: str
    writer: ChunkWriter
    """``open_chunk_store(url)``, except on fake-gcs-server (see the module's docstring)."""


@pytest.fixture(params=["local", *SERVERS])
def store(request: pytest.FixtureRequest) -> Store:
    return Store(*chunk_writer(request, request.param))


@dataclass(frozen=True)
class Bucket:
    server: ObjectServer
    url: str


@pytest.fixture(params=list(SERVERS))
def bucket(request: pytest.FixtureRequest) -> Bucket:
    url, _ = chunk_writer(request, request.param)
    return Bucket(request.getfixturevalue(SERVERS[request.param]), url)


def _union(ranges: list[tuple[int, int]]) -> int:
    return len({i for start, end in ranges for i in range(start, end)})


ranges_in_chunk = st.lists(
    st.tuples(st.integers(0, len(CHUNK)), st.integers(0, 5_000)).map(
        lambda r: (r[0], min(len(CHUNK), r[0] + r[1]))
    ),
    max_size=6,
)


def test_ranges_are_read_back_byte_for_byte_and_only_their_bytes_are_fetched(
    store: Store,
) -> None:
    stored = store.writer.put("session/20250101T000000/user-000000.wav", CHUNK)
    reader = ChunkReader()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(ranges=ranges_in_chunk)
    def holds(ranges: list[tuple[int, int]]) -> None:
        before = reader.bytes_read
        assert reader.read_ranges(stored.uri, ranges) == [CHUNK[s:e] for s, e in ranges]
        assert reader.bytes_read - before == _union(ranges)

    holds()


def test_a_clip_costs_its_bytes_and_the_header_not_the_chunk(store: Store) -> None:
    stored = store.writer.put("s/clip.wav", CHUNK)
    reader = ChunkReader()
    clip = (400_000, 464_000)  # 2 s in the middle of 30 s
    header, samples = reader.read_ranges(stored.uri, [(0, 44), clip])
    assert (header, samples) == (CHUNK[:44], CHUNK[clip[0] : clip[1]])
    assert reader.bytes_read == 44 + 64_000


KEY = "séance 1/20250101T000000%/assistant #000001.wav"
"""A key with what URLs must escape: a space, a percent sign, a hash and a non-ASCII letter."""


def test_put_says_where_the_chunk_is_and_what_it_holds(
    store: Store, request: pytest.FixtureRequest
) -> None:
    if store.url.startswith("gs://"):
        request.applymarker(GCS_TAKES_NO_PUT)
    chunks = open_chunk_store(store.url)
    stored = chunks.put(KEY, b"RIFF and more")
    assert stored.byte_size == len(b"RIFF and more")
    assert stored.sha256 == hashlib.sha256(b"RIFF and more").hexdigest()
    assert stored.uri.startswith(chunks.url.rstrip("/") + "/")
    assert ChunkReader().read_ranges(stored.uri, [(0, 13)]) == [b"RIFF and more"]
    assert chunks.put(KEY, b"again").uri == stored.uri


def test_a_key_urls_must_escape_is_read_by_its_uri(store: Store) -> None:
    """On fake-gcs-server too, where the uri is the one ``put`` would give (tested elsewhere)."""
    stored = store.writer.put(KEY, b"RIFF and more")
    assert ChunkReader().read_ranges(stored.uri, [(5, 8)]) == [b"and"]


def test_a_missing_object_names_its_uri(store: Store) -> None:
    missing = open_chunk_store(store.url).url.rstrip("/") + "/never/written.wav"
    with pytest.raises(ChunkUnavailableError, match="no such object") as caught:
        ChunkReader().read_ranges(missing, [(0, 10)])
    assert caught.value.uri == missing
    assert missing in str(caught.value)


@pytest.mark.parametrize("past", [(90, 120), (100, 101), (500, 600)])
def test_a_range_past_the_end_says_where_the_object_ends(
    store: Store, past: tuple[int, int]
) -> None:
    stored = store.writer.put("s/short.wav", CHUNK[:100])
    reader = ChunkReader()
    with pytest.raises(ChunkUnavailableError, match="past the object's end at byte 100") as caught:
        reader.read_ranges(stored.uri, [(0, 10), past])
    assert caught.value.uri == stored.uri


def test_readers_on_many_threads_share_one_reader(store: Store) -> None:
    uris = [store.writer.put(f"s/track-{n}.wav", CHUNK[n * 1000 :]).uri for n in range(4)]
    reader = ChunkReader()
    asked = [(uris[n % 4], (n * 997, n * 997 + 3_000)) for n in range(64)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda job: reader.read_ranges(job[0], [job[1]]), asked))
    for (uri, (start, end)), [data] in zip(asked, answers, strict=True):
        offset = uris.index(uri) * 1000
        assert data == CHUNK[offset + start : offset + end]
    assert reader.bytes_read == 64 * 3_000


def test_a_chunk_named_as_the_old_local_store_did_is_read_by_its_file_uri(tmp_path: Path) -> None:
    path = tmp_path / "tstore chunks" / "call ü" / "user-000000.wav"
    path.parent.mkdir(parents=True)
    path.write_bytes(CHUNK)
    assert ChunkReader().read_ranges(path.as_uri(), [(44, 1044)]) == [CHUNK[44:1044]]


def test_a_local_put_leaves_no_staged_file(tmp_path: Path) -> None:
    stored = open_chunk_store(str(tmp_path / "plain path")).put("a/b.wav", CHUNK[:10])
    assert stored.uri == (tmp_path / "plain path" / "a" / "b.wav").as_uri()
    assert sorted(p.name for p in (tmp_path / "plain path" / "a").iterdir()) == ["b.wav"]


def test_an_object_another_writer_put_in_the_bucket_is_read_where_it_lies(
    bucket: Bucket,
) -> None:
    name = bucket.url.split("://", 1)[1].split("/")[0]
    bucket.server.upload(name, "egress/room-1.ogg", CHUNK[:5000])
    uri = f"{bucket.server.scheme}://{name}/egress/room-1.ogg"
    assert ChunkReader().read_ranges(uri, [(4000, 5000)]) == [CHUNK[4000:5000]]


def test_a_store_out_of_reach_is_a_clear_error(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, _, prefix = bucket.url.split("://", 1)[1].partition("/")
    bucket.server.upload(name, f"{prefix}/s/x.wav", CHUNK[:10])
    uri = f"{bucket.url}/s/x.wav"
    assert ChunkReader().read_ranges(uri, [(0, 10)]) == [CHUNK[:10]]
    monkeypatch.setenv(bucket.server.endpoint_variable, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ChunkUnavailableError) as caught:
        ChunkReader().read_ranges(uri, [(0, 10)])
    assert caught.value.uri == uri
    with pytest.raises(ChunkWriteError) as refused:
        open_chunk_store(bucket.url).put("s/y.wav", b"data")
    assert refused.value.uri == f"{bucket.url}/s/y.wav"
    secrets = [os.environ[name] for name in SECRET_VARIABLES if os.environ.get(name)]
    assert not [secret for secret in secrets if secret in str(refused.value)]


WRONG_SECRETS = {
    "s3proxy": ("AWS_SECRET_ACCESS_KEY", "not-the-credential"),
    "azurite": ("AZURE_STORAGE_ACCOUNT_KEY", base64.b64encode(bytes(64)).decode()),
}


@pytest.mark.parametrize(
    "kind",
    [
        *WRONG_SECRETS,
        pytest.param(
            "gcs",
            marks=pytest.mark.skip(
                reason="fake-gcs-server checks no credentials: obstore reaches it with OAuth "
                "turned off (disable_oauth), so there is no secret to get wrong"
            ),
        ),
    ],
)
def test_a_bucket_refuses_a_wrong_secret(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = chunk_writer(request, kind)
    variable, wrong = WRONG_SECRETS[kind]
    monkeypatch.setenv(variable, wrong)
    with pytest.raises(ChunkWriteError, match="could not be written"):
        open_chunk_store(url).put("s/x.wav", b"data")
    with pytest.raises(ChunkUnavailableError):
        ChunkReader().read_ranges(f"{url}/s/x.wav", [(0, 4)])
