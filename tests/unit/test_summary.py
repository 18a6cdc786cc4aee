"""A session's summary from its turns and its event ledger, without an engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from queries.completeness import Clock, Ledger
from queries.models import SessionFilters
from queries.summary import passes, summarize

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
CLOCK = Clock(T0 + timedelta(minutes=1), timedelta(minutes=10))
WHOLE = Ledger(events=8, last_seq=7)


def turn(index: int, role: str, *, latency: int | None = None, **overrides: Any) -> dict[str, Any]:
    start = T0 + timedelta(seconds=3 * index)
    return {
        "turn_id": f"turn-{index}",
        "bot_id": "b",
        "framework": "pipecat",
        "role": role,
        "started_at": start,
        "stopped_at": start + timedelta(seconds=2),
        "duration_ms": 2000,
        "interrupted": False,
        "timed_out": False,
        "language": "en-US",
        "complete": True,
        "seq": 2 * index + 1,
        "response_latency_ms": latency,
    } | overrides


CALL = [
    turn(0, "user"),
    turn(1, "assistant", latency=1000, interrupted=True),
    turn(2, "user", timed_out=True, language="de-DE"),
    turn(3, "assistant", latency=2000),
]


def test_a_whole_call_is_summed_up_per_role_and_is_complete() -> None:
    summary = summarize("s", CALL, WHOLE, CLOCK)
    assert (summary.turns.user, summary.turns.assistant) == (2, 2)
    assert (summary.talk_ms.user, summary.talk_ms.assistant) == (4000, 4000)
    assert (summary.interruptions, summary.timeouts) == (1, 1)
    assert summary.median_response_latency_ms == 1500
    assert summary.languages == ["de-DE", "en-US"]
    assert summary.first_event_at == T0
    assert summary.last_event_at == T0 + timedelta(seconds=11)
    assert summary.completeness.complete


def test_a_ledger_behind_its_turns_is_not_complete() -> None:
    lagging = summarize("s", CALL, None, CLOCK).completeness
    assert (lagging.complete, lagging.events, lagging.expected, lagging.missing) == (
        False,
        0,
        8,
        8,
    )
    holey = summarize("s", CALL, Ledger(events=7, last_seq=7), CLOCK).completeness
    assert (holey.complete, holey.missing) == (False, 1)


def test_an_open_turn_is_under_way_while_the_call_goes_on() -> None:
    still_talking = [*CALL[:3], turn(3, "assistant", stopped_at=None, complete=False)]
    summary = summarize("s", still_talking, WHOLE, CLOCK)
    assert summary.completeness.open_turns == 1
    assert (summary.completeness.state, summary.completeness.complete) == ("open", True)
    assert summary.last_event_at == T0 + timedelta(seconds=9)


@pytest.mark.parametrize(
    ("filters", "kept"),
    [
        (SessionFilters(), True),
        (SessionFilters(has_interruption=True), True),
        (SessionFilters(has_interruption=False), False),
        (SessionFilters(has_timeout=False), False),
        (SessionFilters(min_turns=4, max_turns=4), True),
        (SessionFilters(min_turns=5), False),
        (SessionFilters(max_turns=3), False),
        (SessionFilters(language="de-DE"), True),
        (SessionFilters(language="fr-FR"), False),
        (SessionFilters(complete=True), True),
        (SessionFilters(complete=False), False),
        (SessionFilters(state="open"), True),
        (SessionFilters(state="sealed"), False),
    ],
)
def test_filters_on_aggregates(filters: SessionFilters, kept: bool) -> None:
    assert passes(summarize("s", CALL, WHOLE, CLOCK), filters) is kept
