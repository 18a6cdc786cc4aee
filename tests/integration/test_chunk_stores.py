"""Chunk stores against real storage: a local folder and a real S3 API server (s3proxy).

Every promise is held for both: what is put is read back byte for byte by its uri, reads fetch
only the ranges asked (``bytes_read``), and what cannot be read says which chunk and why.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio.stores import (
    ChunkReader,
    ChunkUnavailableError,
    ChunkWriteError,
    open_chunk_store,
)
from tstore.devjvm import free_port
from tstore.devs3 import DevS3

pytestmark = pytest.mark.integration

CHUNK = bytes(range(251)) * 3_825
"""About 30 s of 16 kHz 16-bit mono (960 kB), in a pattern where every offset differs from
its neighbours, so a range read from the wrong place shows."""


@pytest.fixture(params=["local", "s3proxy"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return (tmp_path / "chunks").as_uri()
    url: str = request.getfixturevalue("s3_chunk_store_url")
    return url


def _union(ranges: list[tuple[int, int]]) -> int:
    return len({i for start, end in ranges for i in range(start, end)})


ranges_in_chunk = st.lists(
    st.tuples(st.integers(0, len(CHUNK)), st.integers(0, 5_000)).map(
        lambda r: (r[0], min(len(CHUNK), r[0] + r[1]))
    ),
    max_size=6,
)


def test_ranges_are_read_back_byte_for_byte_and_only_their_bytes_are_fetched(
    store_url: str,
) -> None:
    stored = open_chunk_store(store_url).put("session/20250101T000000/user-000000.wav", CHUNK)
    reader = ChunkReader()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(ranges=ranges_in_chunk)
    def holds(ranges: list[tuple[int, int]]) -> None:
        before = reader.bytes_read
        assert reader.read_ranges(stored.uri, ranges) == [CHUNK[s:e] for s, e in ranges]
        assert reader.bytes_read - before == _union(ranges)

    holds()


def test_a_clip_costs_its_bytes_and_the_header_not_the_chunk(store_url: str) -> None:
    stored = open_chunk_store(store_url).put("s/clip.wav", CHUNK)
    reader = ChunkReader()
    clip = (400_000, 464_000)  # 2 s in the middle of 30 s
    header, samples = reader.read_ranges(stored.uri, [(0, 44), clip])
    assert (header, samples) == (CHUNK[:44], CHUNK[clip[0] : clip[1]])
    assert reader.bytes_read == 44 + 64_000


def test_put_says_where_the_chunk_is_and_what_it_holds(store_url: str) -> None:
    store = open_chunk_store(store_url)
    key = "séance 1/20250101T000000%/assistant #000001.wav"
    stored = store.put(key, b"RIFF and more")
    assert stored.byte_size == len(b"RIFF and more")
    assert stored.sha256 == hashlib.sha256(b"RIFF and more").hexdigest()
    assert stored.uri.startswith(store.url.rstrip("/") + "/")
    assert ChunkReader().read_ranges(stored.uri, [(0, 13)]) == [b"RIFF and more"]
    assert store.put(key, b"again").uri == stored.uri


def test_a_missing_object_names_its_uri(store_url: str) -> None:
    missing = open_chunk_store(store_url).url.rstrip("/") + "/never/written.wav"
    with pytest.raises(ChunkUnavailableError, match="no such object") as caught:
        ChunkReader().read_ranges(missing, [(0, 10)])
    assert caught.value.uri == missing
    assert missing in str(caught.value)


@pytest.mark.parametrize("past", [(90, 120), (100, 101), (500, 600)])
def test_a_range_past_the_end_says_where_the_object_ends(
    store_url: str, past: tuple[int, int]
) -> None:
    stored = open_chunk_store(store_url).put("s/short.wav", CHUNK[:100])
    reader = ChunkReader()
    with pytest.raises(ChunkUnavailableError, match="past the object's end at byte 100") as caught:
        reader.read_ranges(stored.uri, [(0, 10), past])
    assert caught.value.uri == stored.uri


def test_readers_on_many_threads_share_one_reader(store_url: str) -> None:
    store = open_chunk_store(store_url)
    uris = [store.put(f"s/track-{n}.wav", CHUNK[n * 1000 :]).uri for n in range(4)]
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
    s3proxy: DevS3, s3_chunk_store_url: str
) -> None:
    bucket = s3_chunk_store_url.removeprefix("s3://").split("/")[0]
    egress = s3proxy.buckets_dir / bucket / "egress" / "room-1.ogg"
    egress.parent.mkdir(parents=True)
    egress.write_bytes(CHUNK[:5000])
    uri = f"s3://{bucket}/egress/room-1.ogg"
    assert ChunkReader().read_ranges(uri, [(4000, 5000)]) == [CHUNK[4000:5000]]


def test_a_store_out_of_reach_is_a_clear_error(
    s3_chunk_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = open_chunk_store(s3_chunk_store_url).put("s/x.wav", CHUNK[:10])
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ChunkUnavailableError) as caught:
        ChunkReader().read_ranges(stored.uri, [(0, 10)])
    assert caught.value.uri == stored.uri
    with pytest.raises(ChunkWriteError) as refused:
        open_chunk_store(s3_chunk_store_url).put("s/y.wav", b"data")
    assert refused.value.uri == f"{s3_chunk_store_url}/s/y.wav"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in str(refused.value)


def test_a_bucket_refuses_a_wrong_secret(
    s3_chunk_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-credential")
    with pytest.raises(ChunkWriteError, match="could not be written"):
        open_chunk_store(s3_chunk_store_url).put("s/x.wav", b"data")
