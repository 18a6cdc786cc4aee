"""Distributions across sessions over a time range: turn durations, response latencies.

Turns are folded to their latest versions like every other read, from the projection ordered
by bot and time, so a day of one bot reads that bot's day and nothing else. Durations need no
other turn, so each turn's latest version is simply kept (``LIMIT 1 BY``, after ordering its
versions newest first: a third cheaper than folding each column with ``argMax``, which is slow
on a Nullable one); a response latency needs the user turn before it, so latencies go through
``latest_turns`` and its window over each session.

Versions are told apart by ``turn_key``, a 64-bit hash of the turn's session and id stored
with each row, rather than by the two strings: half the work for a day of all bots, and two of
a day's turns would share a hash about once in 10^8 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from consumers.storage.session_facts import quantiles
from queries.models import LatencyFigures, Percentiles, RoleTurnFigures, TurnFigures
from queries.paging import as_utc, bounded, refuse_reversed
from queries.reader import Reader
from queries.turns import SUMMARY_FIELDS, latest_turns
from schemas import Role

_TURNS = f"""
SELECT
    toString(role),
    count(),
    countIf(complete),
    countIf(interrupted),
    countIf(timed_out),
    countIf(duration_ms IS NOT NULL),
    {quantiles()}(duration_ms)
FROM (
    SELECT role, complete, interrupted, timed_out, duration_ms
    FROM transcripts_generations
    WHERE generation = {{generation:UInt32}} AND {{where}}
    ORDER BY turn_key, version DESC
    LIMIT 1 BY turn_key
)
GROUP BY role
ORDER BY role"""
_LATENCIES = f"""
SELECT count(), {quantiles()}(response_latency_ms)
FROM ({{turns}})
WHERE response_latency_ms IS NOT NULL AND {{where}}"""
_STARTED_IN_RANGE = """session_id IN (
    SELECT session_id FROM transcripts_generations
    WHERE generation = {generation:UInt32} AND role = 'assistant' AND {where})"""
"""SQL of whether a row's session has an assistant turn in the range: its latency needs the
user turn before it, wherever that lies."""


def turn_figures(
    reader: Reader, *, since: datetime, until: datetime, bot_id: str | None = None
) -> TurnFigures:
    """Per role, over the turns that started in ``[since, until)``: how many, how many were
    interrupted or timed out, and the percentiles of their durations."""
    low, high, where = in_range(since, until, bot_id)
    rows = reader.rows(
        _TURNS.replace("{where}", where),
        generation=reader.generation("transcripts"),
        since=low,
        until=high,
        bot_id=bot_id or "",
    )
    roles: dict[Role, RoleTurnFigures] = {}
    for role, turns, complete, interrupted, timed_out, timed, durations in rows:
        roles[role] = RoleTurnFigures(
            turns=turns,
            complete=complete,
            interrupted=interrupted,
            timed_out=timed_out,
            duration_ms=percentiles(durations, timed),
        )
    return TurnFigures(since=as_utc(since), until=as_utc(until), bot_id=bot_id, roles=roles)


def latency_figures(
    reader: Reader, *, since: datetime, until: datetime, bot_id: str | None = None
) -> LatencyFigures:
    """The percentiles of the response latencies of assistant turns that started in
    ``[since, until)``, as ``/v1/analytics`` counts them: with the user turn before each,
    even one that started before ``since`` (version 1 left those out)."""
    low, high, where = in_range(since, until, bot_id)
    sessions = _STARTED_IN_RANGE.replace("{where}", where)
    ((measured, latencies),) = reader.rows(
        _LATENCIES.replace("{turns}", latest_turns(SUMMARY_FIELDS, sessions)).replace(
            "{where}", where
        ),
        generation=reader.generation("transcripts"),
        since=low,
        until=high,
        bot_id=bot_id or "",
    )
    return LatencyFigures(
        since=as_utc(since),
        until=as_utc(until),
        bot_id=bot_id,
        response_latency_ms=percentiles(latencies, measured),
    )


def in_range(
    since: datetime, until: datetime, bot_id: str | None
) -> tuple[datetime, datetime, str]:
    """The range checked and bounded, and SQL of the turns in it (of the bot, if one). An
    answer names the range as asked, not as bounded: the same rows lie in both, and a caller
    told 1900 to 2262 for 0001 to 9999 would wonder what was left out."""
    refuse_reversed(since, until)
    return bounded(since), bounded(until), matching("", bot_id)


def matching(turn: str, bot_id: str | None, started: str = "started_at") -> str:
    """SQL of whether a turn started in ``[{since}, {until})`` (of the bot ``{bot_id}``, if
    one): ``turn`` is ``""`` for a row's columns, or a turn tuple and a dot; ``started``
    names its start."""
    since, until = "{since:DateTime64(6, 'UTC')}", "{until:DateTime64(6, 'UTC')}"
    matches = f"{turn}{started} >= {since} AND {turn}{started} < {until}"
    return f"{turn}bot_id = {{bot_id:String}} AND {matches}" if bot_id else matches


def percentiles(values: Sequence[float], count: int) -> Percentiles | None:
    if not count:
        return None
    p50, p90, p95, p99 = (round(v, 1) for v in values)
    return Percentiles(count=count, p50=p50, p90=p90, p95=p95, p99=p99)
