from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
from aiokafka import TopicPartition

from consumers.projections import project
from consumers.steps.dead_letters import dead_letter_headers
from consumers.steps.decode import Rejected, decode
from consumers.steps.write import batch_ranges, dedup_token
from tests.events import T0, chunk, turn_pair
from tests.frames import CODEC, TOPICS, batch, decoded, record


def test_a_chunk_is_placed_in_samples_ms_and_wall_clock() -> None:
    ready = chunk(start_sample=24_000, num_samples=8_000, sample_rate=16_000)
    (row,) = project(decoded([ready]).frames)["audio_chunks"].iter_rows(named=True)
    assert (row["start_sample"], row["end_sample"]) == (24_000, 32_000)
    assert (row["start_ms"], row["end_ms"]) == (1_500, 2_000)
    assert row["starts_at"] == T0 + timedelta(milliseconds=1_500)
    assert row["ends_at"] == T0 + timedelta(seconds=2)


def test_chunk_positions_round_down_like_integer_division() -> None:
    ready = chunk(start_sample=7, num_samples=2**40, sample_rate=44_100)
    (row,) = project(decoded([ready]).frames)["audio_chunks"].iter_rows(named=True)
    end = 7 + 2**40
    assert (row["start_ms"], row["end_ms"]) == (7 * 1000 // 44_100, end * 1000 // 44_100)
    assert row["ends_at"] == T0 + timedelta(microseconds=end * 1_000_000 // 44_100)


def test_every_event_feeds_the_ledger_and_its_own_table() -> None:
    started, stopped = turn_pair()
    rows = project(decoded([started, stopped, chunk(seq=2)]).frames)
    ledger = rows["session_events"].sort("seq")
    assert ledger["seq"].to_list() == [0, 1, 2]
    assert ledger["event_type"].to_list() == ["TurnStarted", "TurnStopped", "ChunkReady"]
    assert ledger["event_id"].to_list() == [str(e.event_id) for e in (started, stopped)] + [
        ledger["event_id"][2]
    ]
    assert rows["transcripts"]["complete"].to_list() == [True], "the stop outranks the start"
    assert rows["audio_chunks"].height == 1


def test_a_start_without_its_stop_in_the_batch_is_an_open_turn() -> None:
    started, stopped = turn_pair()
    other, _ = turn_pair(turn_id="turn-2", seq=2)
    rows = project(decoded([started, other, stopped]).frames)["transcripts"].sort("turn_id")
    assert rows.select("turn_id", "complete").rows() == [("turn-1", True), ("turn-2", False)]


def test_the_dedup_token_depends_only_on_table_records_and_generation() -> None:
    chunks = TopicPartition("audio-chunks", 0)
    turns = TopicPartition("turn-events", 1)
    batch = {
        turns: [record("turn-events", o, b"x") for o in (7, 8, 9)],
        chunks: [record("audio-chunks", 3, b"x")],
    }
    ranges = batch_ranges(batch)
    assert batch_ranges(dict(reversed(batch.items()))) == ranges
    assert re.fullmatch(r"audio-chunks:0:3-3:[0-9a-f]{16},turn-events:1:7-9:[0-9a-f]{16}", ranges)
    assert dedup_token("transcripts", ranges, 1) == f"transcripts|{ranges}|g1"
    assert dedup_token("transcripts", ranges, 2) != dedup_token("transcripts", ranges, 1)


@pytest.mark.parametrize(
    "values",
    [[b"y", b"x", b"x"], [b"x", b"x", b"xx"], [b"", b"xx", b"x"], [b"xx", b"x", b""]],
    ids=repr,
)
def test_other_records_at_the_same_offsets_are_another_batch(values: list[bytes]) -> None:
    """A topic made again numbers its records from 0 again: a batch of other events at the
    offsets of one already written is not its replay (the token was only the offsets, and
    such a batch was refused and committed, lost)."""
    written = {TopicPartition("t", 0): [record("t", o, b"x") for o in range(3)]}
    other = {TopicPartition("t", 0): [record("t", o, v) for o, v in enumerate(values)]}
    assert batch_ranges(other) != batch_ranges(written)
    assert batch_ranges(written) == batch_ranges(
        {TopicPartition("t", 0): [record("t", o, b"x") for o in range(3)]}
    )


def test_decode_rejects_garbage_and_events_on_the_wrong_topic() -> None:
    started, stopped = turn_pair()
    tombstone = record(TOPICS.turn_events, 3, b"")
    decoded = decode(
        batch(
            [
                record(TOPICS.turn_events, 0, CODEC.encode(started)),
                record(TOPICS.turn_events, 1, b"garbage"),
                record(TOPICS.turn_events, 2, CODEC.encode(chunk())),
                dataclasses.replace(tombstone, value=None),
                record(TOPICS.turn_events, 4, CODEC.encode(stopped)),
                record(TOPICS.turn_events, 5, CODEC.encode(started)),
            ]
        ),
        CODEC,
        TOPICS,
    )
    assert decoded.events == 3
    assert decoded.frames[type(started)]["source_offset"].to_list() == [0, 5]
    assert decoded.frames[type(stopped)]["source_offset"].to_list() == [4]
    assert [(r.reason, r.record.offset) for r in decoded.rejected] == [
        ("bad-framing", 1),
        ("wrong-topic", 2),
        ("bad-framing", 3),
    ]


def test_dead_letters_say_why_and_where() -> None:
    headers = dict(dead_letter_headers(Rejected(record("turn-events", 5, b"?"), "bad-avro", "x")))
    assert headers == {
        "tstore-reason": b"bad-avro",
        "tstore-detail": b"x",
        "tstore-source-topic": b"turn-events",
        "tstore-source-partition": b"1",
        "tstore-source-offset": b"5",
    }
