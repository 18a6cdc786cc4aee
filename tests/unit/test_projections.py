from __future__ import annotations

from datetime import timedelta

from aiokafka import ConsumerRecord, TopicPartition

from consumers.projections import ProjectedRows
from consumers.projections.audio_chunks import chunk_row
from consumers.projections.source import SourcePosition
from consumers.steps.dead_letters import dead_letter_headers
from consumers.steps.decode import Rejected, decode
from consumers.steps.write import dedup_token
from schemas import EventCodec, Topics
from tests.events import T0, chunk, turn_pair

HERE = SourcePosition("audio-chunks", 2, 40)


def test_a_chunk_is_placed_in_samples_ms_and_wall_clock() -> None:
    row = chunk_row(chunk(start_sample=24_000, num_samples=8_000, sample_rate=16_000), HERE)
    assert (row.start_sample, row.end_sample) == (24_000, 32_000)
    assert (row.start_ms, row.end_ms) == (1_500, 2_000)
    assert row.starts_at == T0 + timedelta(milliseconds=1_500)
    assert row.ends_at == T0 + timedelta(seconds=2)


def test_every_event_feeds_the_ledger_and_its_own_table() -> None:
    rows = ProjectedRows()
    started, stopped = turn_pair()
    for event in (started, stopped, chunk(seq=2)):
        rows.add(event, HERE)
    assert [r.seq for r in rows.session_events] == [0, 1, 2]
    assert [r.event_type for r in rows.session_events] == [
        "TurnStarted",
        "TurnStopped",
        "ChunkReady",
    ]
    assert len(rows.transcripts) == 2
    assert len(rows.audio_chunks) == 1


def _record(topic: str, offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, 1, offset, 0, 0, b"s-1", value, None, 3, len(value), ())


def test_the_dedup_token_depends_only_on_table_ranges_and_generation() -> None:
    chunks = TopicPartition("audio-chunks", 0)
    turns = TopicPartition("turn-events", 1)
    batch = {
        turns: [_record("turn-events", o, b"x") for o in (7, 8, 9)],
        chunks: [_record("audio-chunks", 3, b"x")],
    }
    token = "transcripts|audio-chunks:0:3-3,turn-events:1:7-9|g1"
    assert dedup_token("transcripts", batch, 1) == token
    assert dedup_token("transcripts", dict(reversed(batch.items())), 1) == token
    assert dedup_token("transcripts", batch, 2) != token


def test_decode_rejects_garbage_and_events_on_the_wrong_topic() -> None:
    codec, topics = EventCodec(), Topics()
    started, _ = turn_pair()
    batch = decode(
        [
            _record(topics.turn_events, 0, codec.encode(started)),
            _record(topics.turn_events, 1, b"garbage"),
            _record(topics.turn_events, 2, codec.encode(chunk())),
        ],
        codec,
        topics,
    )
    assert [e for e, _ in batch.events] == [started]
    assert [(r.reason, r.record.offset) for r in batch.rejected] == [
        ("bad-framing", 1),
        ("wrong-topic", 2),
    ]


def test_dead_letters_say_why_and_where() -> None:
    headers = dict(dead_letter_headers(Rejected(_record("turn-events", 5, b"?"), "bad-avro", "x")))
    assert headers == {
        "tstore-reason": b"bad-avro",
        "tstore-detail": b"x",
        "tstore-source-topic": b"turn-events",
        "tstore-source-partition": b"1",
        "tstore-source-offset": b"5",
    }
