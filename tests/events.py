"""Event builders and hypothesis strategies shared by the tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from hypothesis import strategies as st

from schemas import (
    ChunkReady,
    ProducerInfo,
    SessionEnded,
    Track,
    TurnStarted,
    TurnStopped,
    WordTiming,
)
from schemas.models import MAX_SAMPLES, Event

PRODUCER = ProducerInfo(framework="test", framework_version="0", library_version="0.1.0")
T0 = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)


def envelope(seq: int, session_id: str = "s-1", **overrides: Any) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "bot_id": "bot-1",
        "seq": seq,
        "occurred_at": T0,
        "producer": PRODUCER,
        **overrides,
    }


def turn_pair(
    session_id: str = "s-1",
    turn_id: str = "turn-1",
    text: str = "Where is my order?",
    seq: int = 0,
    duration: timedelta = timedelta(seconds=1, milliseconds=500),
) -> tuple[TurnStarted, TurnStopped]:
    started = TurnStarted(**envelope(seq, session_id), turn_id=turn_id, role="user", started_at=T0)
    stopped = TurnStopped(
        **envelope(seq + 1, session_id),
        turn_id=turn_id,
        role="user",
        started_at=T0,
        stopped_at=T0 + duration,
        text=text,
        user_id="caller-7",
        words=(WordTiming(text="Where", start=0.0, end=0.3),),
    )
    return started, stopped


def chunk(seq: int = 0, session_id: str = "s-1", **overrides: Any) -> ChunkReady:
    fields: dict[str, Any] = {
        "chunk_id": "c-0",
        "track": "user",
        "chunk_seq": 0,
        "uri": "file:///tmp/c-0.wav",
        "format": "wav",
        "sample_rate": 16000,
        "channels": 1,
        "start_sample": 0,
        "num_samples": 16000,
        "recording_started_at": T0,
        "byte_size": 32044,
        "sha256": "0" * 64,
    }
    fields.update(overrides)
    return ChunkReady(**envelope(seq, session_id) | fields)


def ended(
    seq: int, session_id: str = "s-1", *, bot_id: str = "bot-1", totals: Mapping[str, int] = {}
) -> SessionEnded:
    """The session's end as its ``seq``-th event, declaring ``totals`` (``user_chunks``...)."""
    return SessionEnded(**envelope(seq, session_id, bot_id=bot_id), event_count=seq + 1, **totals)


identifiers = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
seqs = st.integers(min_value=0, max_value=2**63 - 1)
offsets = st.floats(min_value=0, max_value=3600, allow_nan=False)


@st.composite
def word_timings(draw: st.DrawFn) -> WordTiming:
    start = draw(offsets)
    return WordTiming(text=draw(st.text(max_size=20)), start=start, end=start + draw(offsets))


@st.composite
def events(draw: st.DrawFn) -> Event:
    common = {
        "session_id": draw(identifiers),
        "bot_id": draw(identifiers),
        "seq": draw(seqs),
        "occurred_at": draw(instants),
        "producer": PRODUCER,
    }
    kind = draw(st.sampled_from(["started", "stopped", "chunk", "ended"]))
    started_at = draw(instants)
    if kind == "started":
        return TurnStarted(
            **common,
            turn_id=draw(identifiers),
            role=draw(st.sampled_from(["user", "assistant"])),
            started_at=started_at,
            detection_strategy=draw(st.none() | identifiers),
        )
    if kind == "stopped":
        return TurnStopped(
            **common,
            turn_id=draw(identifiers),
            role=draw(st.sampled_from(["user", "assistant"])),
            started_at=started_at,
            stopped_at=started_at + draw(st.timedeltas(timedelta(0), timedelta(hours=1))),
            text=draw(st.text(max_size=200)),
            interrupted=draw(st.booleans()),
            timed_out=draw(st.booleans()),
            user_id=draw(st.none() | identifiers),
            language=draw(st.none() | st.sampled_from(["en-US", "de", "pt-BR"])),
            words=draw(st.none() | st.lists(word_timings(), max_size=5).map(tuple)),
        )
    if kind == "ended":
        counts = st.integers(0, 2**63 - 1)
        return SessionEnded(
            **common,
            event_count=draw(st.integers(1, 2**63 - 1)),
            **{f"{t}_{n}": draw(counts) for t in get_args(Track) for n in ("chunks", "samples")},
        )
    return ChunkReady(
        **common,
        chunk_id=draw(identifiers),
        track=draw(st.sampled_from(["user", "assistant", "mixed"])),
        chunk_seq=draw(seqs),
        uri=draw(identifiers),
        format=draw(st.sampled_from(["wav", "ogg", "opus", "mp3"])),
        sample_rate=draw(st.sampled_from([8000, 16000, 24000, 48000])),
        channels=draw(st.integers(1, 2)),
        start_sample=draw(st.integers(0, MAX_SAMPLES)),
        num_samples=draw(st.integers(0, MAX_SAMPLES)),
        recording_started_at=draw(instants),
        byte_size=draw(st.integers(0, 2**40)),
        sha256=draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
    )
