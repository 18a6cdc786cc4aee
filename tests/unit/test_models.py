"""A bad value is refused at construction, with the field named, before anything is published."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import TurnStarted, TurnStopped, WordTiming
from schemas.models import MAX_TEXT_CHARS
from tests.events import T0, chunk, envelope, turn_pair


def _error_fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in err["loc"]) for err in exc.errors()}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"session_id": ""}, "session_id"),
        ({"seq": -1}, "seq"),
        ({"started_at": datetime(2026, 1, 1)}, "started_at"),
        ({"role": "system"}, "role"),
        ({"surprise": 1}, "surprise"),
        ({"started_at": 12_345.6}, "started_at"),  # time.monotonic(), once taken for 1970
        ({"started_at": "2026-01-01T00:00:00Z"}, "started_at"),
        ({"seq": "3"}, "seq"),
        ({"seq": True}, "seq"),
    ],
)
def test_turn_started_names_the_bad_field(overrides: dict[str, Any], field: str) -> None:
    values = {**envelope(0), "turn_id": "t", "role": "user", "started_at": T0, **overrides}
    with pytest.raises(ValidationError) as caught:
        TurnStarted(**values)
    assert field in _error_fields(caught.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"sha256": "ABC"}, "sha256"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"channels": 0}, "channels"),
        ({"format": "WAV"}, "format"),
        ({"track": "left"}, "track"),
        ({"start_sample": -5}, "start_sample"),
        ({"num_samples": 480.0}, "num_samples"),
        ({"recording_started_at": 1_767_225_600}, "recording_started_at"),
    ],
)
def test_chunk_ready_names_the_bad_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        chunk(**overrides)
    assert field in _error_fields(caught.value)


def test_a_turn_cannot_stop_before_it_starts() -> None:
    _, stopped = turn_pair()
    values = stopped.model_dump() | {"stopped_at": T0 - timedelta(seconds=1)}
    with pytest.raises(ValidationError, match=r"stopped_at .* is before started_at"):
        TurnStopped(**values)


def test_text_is_bounded() -> None:
    _, stopped = turn_pair()
    with pytest.raises(ValidationError) as caught:
        TurnStopped(**(stopped.model_dump() | {"text": "x" * (MAX_TEXT_CHARS + 1)}))
    assert _error_fields(caught.value) == {"text"}


def test_word_timing_end_before_start_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"end \(1.0\) is before start \(2.0\)"):
        WordTiming(text="hi", start=2.0, end=1.0)


def test_times_are_normalised_to_utc_and_duration_is_in_ms() -> None:
    paris = timezone(timedelta(hours=1))
    _, stopped = turn_pair(duration=timedelta(seconds=2, microseconds=999))
    local = TurnStopped(**(stopped.model_dump() | {"started_at": T0.astimezone(paris)}))
    assert local.started_at.utcoffset() == timedelta(0)
    assert local.started_at == T0
    assert stopped.duration_ms == 2000


def test_events_are_immutable() -> None:
    started, _ = turn_pair()
    with pytest.raises(ValidationError):
        started.seq = 5  # type: ignore[misc]
