"""A session's summary, from its turns (latest versions, with their latencies) and its event
ledger: pure, so every rule here can be read and tested without an engine.

What the producer sent is the highest ``seq`` seen, in the ledger or among the turns (or what
the session's end declared): the projector writes turns before the ledger, so a session whose
ledger has not caught up yet is not called complete (``queries.completeness``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from statistics import median
from typing import Any

from analytics.session_time import TurnTime, session_time
from queries.completeness import Clock, Ledger, completeness
from queries.models import RoleFigures, SessionFilters, SessionSummary
from queries.paging import as_utc
from queries.turns import milliseconds


def summarize(
    session_id: str, turns: Sequence[Mapping[str, Any]], ledger: Ledger | None, clock: Clock
) -> SessionSummary:
    """``turns``: the session's turns in speaking order, as ``queries.turns.stored_turns``
    gives them (at least one)."""
    last_event_at = as_utc(max(t["stopped_at"] or t["started_at"] for t in turns))
    latencies = [t["response_latency_ms"] for t in turns if t["response_latency_ms"] is not None]
    by_role = {role: [t for t in turns if t["role"] == role] for role in ("user", "assistant")}
    spent = session_time(
        TurnTime(
            t["role"],
            milliseconds(t["started_at"]),
            None if t["stopped_at"] is None else milliseconds(t["stopped_at"]),
        )
        for t in turns
    )
    return SessionSummary(
        session_id=session_id,
        bot_id=turns[0]["bot_id"],
        framework=turns[0]["framework"],
        first_event_at=as_utc(min(t["started_at"] for t in turns)),
        last_event_at=last_event_at,
        turns=RoleFigures(user=len(by_role["user"]), assistant=len(by_role["assistant"])),
        talk_ms=RoleFigures(
            **{role: sum(t["duration_ms"] or 0 for t in found) for role, found in by_role.items()}
        ),
        call_ms=spent.call_ms,
        overlap_ms=spent.overlap_ms,
        silence_ms=spent.silence_ms,
        interruptions=sum(bool(t["interrupted"]) for t in turns),
        timeouts=sum(bool(t["timed_out"]) for t in turns),
        median_response_latency_ms=median(latencies) if latencies else None,
        languages=sorted({t["language"] for t in turns if t["language"]}),
        completeness=completeness(
            ledger or Ledger(),
            clock,
            last_turn_seq=max(t["seq"] for t in turns),
            open_turns=sum(not t["complete"] for t in turns),
            last_turn_at=last_event_at,
        ),
    )


def summarize_silent(
    session_id: str, bot_id: str, first_event_at: datetime, ledger: Ledger, clock: Clock
) -> SessionSummary:
    """A session with events stored but no turn (a call nobody spoke in, or whose turns are
    still on their way): its times are those of its events, its framework unknown."""
    nobody = RoleFigures(user=0, assistant=0)
    return SessionSummary(
        session_id=session_id,
        bot_id=bot_id,
        framework="",
        first_event_at=as_utc(first_event_at),
        last_event_at=ledger.last_event_at or as_utc(first_event_at),
        turns=nobody,
        talk_ms=nobody,
        call_ms=0,
        overlap_ms=0,
        silence_ms=0,
        interruptions=0,
        timeouts=0,
        median_response_latency_ms=None,
        languages=[],
        completeness=completeness(ledger, clock),
    )


def passes(summary: SessionSummary, filters: SessionFilters) -> bool:
    """Whether the summary passes every filter set on its aggregates (bot and time are the
    listing's to apply)."""
    turns = summary.turns.user + summary.turns.assistant
    f = filters
    return (
        (f.has_interruption is None or (summary.interruptions > 0) == f.has_interruption)
        and (f.has_timeout is None or (summary.timeouts > 0) == f.has_timeout)
        and (f.min_turns is None or turns >= f.min_turns)
        and (f.max_turns is None or turns <= f.max_turns)
        and (f.language is None or f.language in summary.languages)
        and (f.complete is None or summary.completeness.complete == f.complete)
        and (f.state is None or summary.completeness.state == f.state)
    )
