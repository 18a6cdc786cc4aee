"""Per-session numbering, which needs no broker: the producer numbers events as they are made."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from producers import TranscriptProducer
from schemas import Envelope
from tests.events import chunk

ENVELOPE = set(Envelope.model_fields)


def test_each_session_counts_from_zero_and_a_resumed_one_continues(tmp_path: Path) -> None:
    producer = TranscriptProducer("127.0.0.1:1", bot_id="bot", spool_dir=tmp_path)
    assert [producer.turn_started("a", f"t{i}", "user").seq for i in range(3)] == [0, 1, 2]
    assert producer.turn_started("b", "t0", "user").seq == 0
    producer.resume_session("c", 41)
    assert producer.turn_started("c", "t9", "assistant").seq == 41
    ended = producer.end_session("a")
    assert ended is not None
    assert (ended.seq, ended.event_count) == (3, 4), "the session's last event"


@pytest.mark.parametrize(
    ("next_seq", "tracks", "named"),
    [
        ("12", None, "next_seq"),
        (12.0, None, "next_seq"),
        (True, None, "next_seq"),
        (-1, None, "next_seq"),
        (3, {"mixed": (1,)}, "tracks['mixed']"),
        (3, {"mixed": (1, "48000")}, "tracks['mixed']"),
    ],
)
def test_a_resumed_session_s_numbers_are_checked_where_they_are_given(
    tmp_path: Path, next_seq: object, tracks: object, named: str
) -> None:
    """A ``next_seq`` restored as a string or a float was taken, and every later call of the
    session raised, naming ``seq``, which the bot never passed; its end was refused."""
    producer = TranscriptProducer("127.0.0.1:1", bot_id="bot", spool_dir=tmp_path)
    with pytest.raises(ValueError, match=named.replace("[", r"\[")):
        producer.resume_session("c", next_seq, tracks)  # type: ignore[arg-type]
    assert producer.turn_started("c", "t0", "user").seq == 0, "nothing resumed"


def test_an_ended_session_takes_no_event_and_no_second_end_until_resumed(
    tmp_path: Path,
) -> None:
    """Its numbering started again from 0, and the store, keeping one event per session and
    seq, took the new events for the ones they replaced: an end twice gave the store a
    session of 3 events, sealed with holes, out of 5."""
    producer = TranscriptProducer("127.0.0.1:1", bot_id="bot", spool_dir=tmp_path)
    producer.turn_started("a", "t0", "user")
    assert producer.end_session("a") is not None
    with capture_logs() as logs:
        assert producer.end_session("a") is None
        producer.turn_started("a", "t1", "user")
    assert [(e["event"], e.get("reason")) for e in logs] == [
        ("session_end_repeated", None),
        ("event_dropped", "the session was ended: call resume_session to continue it"),
    ]
    producer.resume_session("a", 2)
    assert producer.turn_started("a", "t1", "user").seq == 2


def test_a_session_s_end_declares_its_events_and_per_track_chunks_and_samples(
    tmp_path: Path,
) -> None:
    producer = TranscriptProducer("127.0.0.1:1", bot_id="bot", spool_dir=tmp_path)
    producer.turn_started("s", "t0", "user")
    for n, (track, samples) in enumerate([("user", 800), ("assistant", 800), ("user", 400)]):
        producer.chunk_ready(
            "s",
            **chunk(n, "s", track=track, num_samples=samples).model_dump(exclude=ENVELOPE),
        )
    producer.resume_session("r", 7, tracks={"mixed": (1, 48_000)})
    ended = producer.end_session("s")
    assert ended is not None
    assert (ended.seq, ended.event_count) == (4, 5)
    assert (ended.user_chunks, ended.user_samples) == (2, 1200)
    assert (ended.assistant_chunks, ended.assistant_samples) == (1, 800)
    assert (ended.mixed_chunks, ended.mixed_samples) == (0, 0)
    resumed = producer.end_session("r")
    assert resumed is not None
    assert (resumed.event_count, resumed.mixed_chunks, resumed.mixed_samples) == (8, 1, 48_000)


def test_an_end_the_contract_refuses_is_logged_not_raised(tmp_path: Path) -> None:
    producer = TranscriptProducer("127.0.0.1:1", bot_id="bot", spool_dir=tmp_path)
    assert producer.end_session("") is None
