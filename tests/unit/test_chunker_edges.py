"""``RecordingChunker`` with odd audio and odd arguments: a value the contract refuses is a
``ValueError`` naming it before anything is written or numbered, and no byte of a frame that a
buffer cut in two is lost unless nothing can complete it (then it is logged and counted)."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from audio.stores import open_chunk_store
from producers import TranscriptProducer
from producers.chunks import RecordingChunker, chunk_id
from schemas import ChunkReady
from schemas.models import MAX_ID_CHARS

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Published:
    """The ChunkReady events a producer made, in order."""

    def __init__(self, producer: TranscriptProducer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[ChunkReady] = []
        made = producer.chunk_ready

        def chunk_ready(session_id: str, **fields: Any) -> ChunkReady:
            event = made(session_id, **fields)
            self.events.append(event)
            return event

        monkeypatch.setattr(producer, "chunk_ready", chunk_ready)


@pytest_asyncio.fixture
async def producer(tmp_path: Path) -> AsyncIterator[TranscriptProducer]:
    """Running, its broker out of reach: events wait in memory, as while Kafka is down."""
    producer = TranscriptProducer(
        "127.0.0.1:1", bot_id="bot", spool_dir=tmp_path / "spool", close_timeout_s=0.2
    )
    producer.start()
    yield producer
    await producer.close()


@pytest.fixture
def published(producer: TranscriptProducer, monkeypatch: pytest.MonkeyPatch) -> Published:
    return Published(producer, monkeypatch)


def chunker_for(
    producer: TranscriptProducer, root: Path, session_id: str = "s"
) -> RecordingChunker:
    chunker = RecordingChunker(producer, session_id, open_chunk_store(str(root)))
    chunker.start_segment(at=T0)
    return chunker


def files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.wav")) if root.exists() else []


def chunk_logs(
    logs: list[MutableMapping[str, Any]], chunker: RecordingChunker
) -> list[MutableMapping[str, Any]]:
    """The chunker's own lines, all of them: the producer's delivery thread, failing to reach
    its broker, logs in the same capture at moments of its own."""
    return [e for e in logs if e.get("session_id") == chunker.session_id]


def frames_of(path: Path) -> bytes:
    with wave.open(io.BytesIO(path.read_bytes())) as wav:
        return bytes(wav.readframes(wav.getnframes()))


@pytest.mark.parametrize(
    ("sample_rate", "channels", "named"),
    [
        (0, 1, "sample_rate: 0; a whole number in 1000 .. 768000"),
        (500, 1, "sample_rate: 500; a whole number in 1000 .. 768000"),
        (768_001, 1, "sample_rate: 768001;"),
        (16_000.5, 1, "sample_rate: 16000.5;"),
        (16_000, 0, "channels: 0; a whole number in 1 .. 32"),
        (16_000, 33, "channels: 33;"),
        (16_000, True, "channels: True;"),
    ],
)
async def test_a_format_the_contract_refuses_is_named_and_nothing_is_written_or_numbered(
    producer: TranscriptProducer,
    published: Published,
    tmp_path: Path,
    sample_rate: Any,
    channels: Any,
    named: str,
) -> None:
    """0 Hz raised ``wave.Error: sampling rate not specified``, 0 channels ZeroDivisionError,
    and 500 Hz was written and then refused by its event, leaving its file behind and a
    number and 100 samples taken from the track."""
    chunker = chunker_for(producer, tmp_path / "store")
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        await chunker.add("user", b"\x00\x00" * 100, sample_rate, channels)
    with pytest.raises(ValueError, match=named.split(":")[0]):
        await chunker.add("user", b"", sample_rate, channels)  # at the first call, audio or not
    assert files(tmp_path / "store") == []
    await chunker.add("user", b"\x00\x00" * 10, 16_000)
    (event,) = published.events
    assert (event.chunk_seq, event.start_sample, event.num_samples) == (0, 0, 10)


async def test_the_contract_s_bounds_are_taken(
    producer: TranscriptProducer, published: Published, tmp_path: Path
) -> None:
    chunker = chunker_for(producer, tmp_path / "store")
    formats: list[tuple[Any, int]] = [(1_000, 1), (768_000, 32), (16_000.0, 2)]
    for sample_rate, channels in formats:
        await chunker.add("user", b"\x00\x00" * channels * 3, sample_rate, channels)
    assert [(e.sample_rate, e.channels, e.num_samples) for e in published.events] == [
        (1_000, 1, 3),
        (768_000, 32, 3),
        (16_000, 2, 3),
    ], "a whole number of Hz given as a float is taken, as the contract takes it"


async def test_a_track_the_contract_lacks_refuses_the_whole_buffer(
    producer: TranscriptProducer, published: Published, tmp_path: Path
) -> None:
    chunker = chunker_for(producer, tmp_path / "store")
    with pytest.raises(ValueError, match="track: 'bot'; one of user, assistant, mixed"):
        await chunker.add_buffer({"user": b"\x00\x00", "bot": b"\x00\x00"}, 16_000)  # type: ignore[dict-item]
    assert files(tmp_path / "store") == []
    assert published.events == []


async def test_a_chunk_its_event_would_refuse_leaves_no_file_and_no_hole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty bot id is refused by every event: the chunk was written first."""
    producer = TranscriptProducer("127.0.0.1:1", bot_id="", spool_dir=tmp_path / "spool")
    producer.start()
    try:
        chunker = chunker_for(producer, tmp_path / "store")
        with pytest.raises(ValueError, match="bot_id"):
            await chunker.add_buffer({"user": b"\x00\x00" * 4, "assistant": b"\x00\x00"}, 16_000)
        assert files(tmp_path / "store") == []
        producer.bot_id = "bot"
        published = Published(producer, monkeypatch)
        await chunker.add_buffer({"user": b"\x00\x00" * 4, "assistant": b"\x00\x00"}, 16_000)
        assert [(e.track, e.chunk_seq, e.start_sample) for e in published.events] == [
            ("user", 0, 0),
            ("assistant", 0, 0),
        ]
    finally:
        await producer.close(0.2)


@pytest.mark.parametrize(
    ("at", "why"),
    [
        (datetime(2026, 12, 7, 12, 0), "timezone"),
        (datetime(1800, 1, 1, tzinfo=UTC), "greater than or equal"),
    ],
)
def test_a_segment_start_the_contract_refuses_is_named_at_the_call(
    producer: TranscriptProducer, tmp_path: Path, at: datetime, why: str
) -> None:
    """Taken, each chunk of the segment was written and then refused."""
    chunker = RecordingChunker(producer, "s", open_chunk_store(str(tmp_path)))
    with pytest.raises(ValueError, match=f"^at: .*{why}"):
        chunker.start_segment(at=at)
    assert not chunker.recording


async def test_a_session_id_as_long_as_the_contract_allows_gets_its_chunks(
    producer: TranscriptProducer, published: Published, tmp_path: Path
) -> None:
    """Its turns were taken, but ``id/track/seq`` was too long an id for every chunk."""
    session_id = "é" * MAX_ID_CHARS
    chunker = chunker_for(producer, tmp_path / "store", session_id)
    for _ in range(2):
        await chunker.add("assistant", b"\x00\x00", 16_000)
    ids = [e.chunk_id for e in published.events]
    assert all(len(i) <= MAX_ID_CHARS and i.endswith(f"/assistant/{n}") for n, i in enumerate(ids))
    assert chunk_id("é" * MAX_ID_CHARS, "user", 0) != chunk_id("é" * (MAX_ID_CHARS - 1), "user", 0)
    assert chunk_id("call-7", "user", 3) == "call-7/user/3", "a short id's name is unchanged"
    assert len(files(tmp_path / "store")) == 2


@pytest.mark.parametrize(
    ("channels", "buffers"),
    [
        (1, [b"\x01\x02\x03", b"\x04\x05\x06"]),
        (2, [bytes(range(10)), bytes(range(10, 16))]),
        (1, [b"\x01", b"\x02", b"\x03\x04\x05", b"\x06"]),
    ],
)
async def test_a_frame_cut_by_a_buffer_is_completed_by_the_next_one(
    producer: TranscriptProducer,
    published: Published,
    tmp_path: Path,
    channels: int,
    buffers: list[bytes],
) -> None:
    """3 bytes of 16-bit mono lost the third, and so shifted every later sample by a byte."""
    chunker = chunker_for(producer, tmp_path / "store")
    with capture_logs() as logs:
        for pcm in buffers:
            await chunker.add("user", pcm, 16_000, channels)
    stream = b"".join(buffers)
    assert b"".join(frames_of(f) for f in files(tmp_path / "store")) == stream
    frame = 2 * channels
    assert [e.start_sample for e in published.events] == [
        sum(e.num_samples for e in published.events[:n]) for n in range(len(published.events))
    ]
    assert sum(e.num_samples for e in published.events) == len(stream) // frame
    assert [e.chunk_seq for e in published.events] == list(range(len(published.events)))
    assert chunker.partial_bytes_dropped == 0
    assert [e for e in logs if e["event"] == "partial_frame_dropped"] == []


async def test_a_cut_frame_nothing_can_complete_is_dropped_logged_and_counted(
    producer: TranscriptProducer, published: Published, tmp_path: Path
) -> None:
    """The segment ends, the format changes, the session drains: no later byte belongs to it."""
    chunker = chunker_for(producer, tmp_path / "store")
    with capture_logs() as logs:
        await chunker.add("user", b"\x01\x02\x03", 16_000)
        chunker.stop_segment()
        chunker.start_segment(at=T0)
        await chunker.add("user", b"\x04\x05\x06\x07", 16_000)
        await chunker.add("assistant", bytes(7), 16_000, 2)
        await chunker.add("assistant", bytes(4), 16_000, 1)
        await chunker.add("mixed", b"\x01", 8_000)
        await chunker.drain()
    dropped = [
        (e["track"], e["bytes_dropped"], e["frame_bytes"], e["reason"])
        for e in logs
        if e["event"] == "partial_frame_dropped"
    ]
    assert dropped == [
        ("user", 1, 2, "the segment ended"),
        ("assistant", 3, 4, "the format changed"),
        ("mixed", 1, 2, "the session's audio drained"),
    ]
    assert all(e["log_level"] == "warning" for e in logs if e["event"] == "partial_frame_dropped")
    assert chunker.partial_bytes_dropped == 5
    assert [(e.track, e.start_sample, e.num_samples) for e in published.events] == [
        ("user", 0, 1),
        ("user", 0, 2),
        ("assistant", 0, 1),
        ("assistant", 1, 2),
    ]


async def test_a_chunk_placed_while_the_producer_is_closed_is_not_written(
    tmp_path: Path,
) -> None:
    """Its event is dropped, so its file would belong to no event; the bot is not crashed,
    and the chunks after it keep their place in the recording."""
    producer = TranscriptProducer("127.0.0.1:1", bot_id="bot", spool_dir=tmp_path / "spool")
    producer.start()
    chunker = chunker_for(producer, tmp_path / "store")
    await chunker.add("user", b"\x00\x00" * 4, 16_000)
    await producer.close(0.2)
    with capture_logs() as logs:
        await chunker.add("user", b"\x00\x00" * 4, 16_000)
    assert [(e["event"], e["reason"], e["chunk_seq"]) for e in chunk_logs(logs, chunker)] == [
        ("chunk_dropped", "producer not running", 1)
    ]
    assert chunker.chunks_dropped == 1
    assert [f.name for f in files(tmp_path / "store")] == ["user-000000.wav"]


async def test_a_chunk_of_a_session_already_ended_is_not_written(
    producer: TranscriptProducer, published: Published, tmp_path: Path
) -> None:
    """Its event is refused: a pipeline that finished before its recording stopped handed
    the last buffer over after the session's end, and its file belonged to no event."""
    chunker = chunker_for(producer, tmp_path / "store")
    await chunker.add("user", b"\x00\x00" * 4, 16_000)
    producer.end_session(chunker.session_id)
    with capture_logs() as logs:
        await chunker.add("user", b"\x00\x00" * 4, 16_000)
    assert [(e["event"], e["reason"]) for e in chunk_logs(logs, chunker)] == [
        ("chunk_dropped", "the session was ended")
    ]
    assert [f.name for f in files(tmp_path / "store")] == ["user-000000.wav"]


async def test_a_buffer_of_less_than_a_frame_starts_no_segment(
    producer: TranscriptProducer, published: Published, tmp_path: Path
) -> None:
    """A session's end waits for the stop of a recording that started; none had."""
    chunker = RecordingChunker(producer, "s", open_chunk_store(str(tmp_path / "store")))
    await chunker.add_buffer({"user": b"", "assistant": b"\x01"}, 16_000)
    assert not chunker.recording
    await chunker.add("assistant", b"\x02", 16_000)
    assert chunker.recording
    (event,) = published.events
    assert (event.track, event.num_samples) == ("assistant", 1)
