"""Distributions across sessions: turn durations and response latencies over a time range.

Turns are folded to their latest versions like every other read, from the projection ordered
by bot and time, so a day of one bot reads that bot's day and nothing else.
"""

from __future__ import annotations

from datetime import datetime

from queries.errors import BadQueryError
from queries.models import Percentiles, RoleTurnFigures, TurnFigures
from queries.paging import bounded
from queries.reader import Reader
from queries.turns import SUMMARY_FIELDS, latest_turns
from schemas import Role

LEVELS = (0.5, 0.9, 0.95, 0.99)

_WHERE = "started_at >= {since:DateTime64(6, 'UTC')} AND started_at < {until:DateTime64(6, 'UTC')}"
_FIGURES = f"""
SELECT
    toString(role),
    count(),
    countIf(complete),
    countIf(interrupted),
    countIf(timed_out),
    quantilesIf({", ".join(map(str, LEVELS))})(duration_ms, complete),
    quantilesIf({", ".join(map(str, LEVELS))})(response_latency_ms,
                                                 response_latency_ms IS NOT NULL),
    countIf(response_latency_ms IS NOT NULL)
FROM ({{turns}})
GROUP BY role
ORDER BY role"""


def turn_figures(
    reader: Reader, *, since: datetime, until: datetime, bot_id: str | None = None
) -> TurnFigures:
    """Per role: turns, and the percentiles of their durations and response latencies, for
    the turns that started in ``[since, until)``."""
    since, until = bounded(since), bounded(until)
    if since >= until:
        raise BadQueryError("since", "must be before until")
    where = f"bot_id = {{bot_id:String}} AND {_WHERE}" if bot_id else _WHERE
    rows = reader.rows(
        _FIGURES.replace("{turns}", latest_turns(SUMMARY_FIELDS, where)),
        generation=reader.generation("transcripts"),
        since=since,
        until=until,
        bot_id=bot_id or "",
    )
    by_role: dict[Role, RoleTurnFigures] = {}
    for role, turns, complete, interrupted, timed_out, durations, latencies, measured in rows:
        by_role[role] = RoleTurnFigures(
            turns=turns,
            complete=complete,
            interrupted=interrupted,
            timed_out=timed_out,
            duration_ms=_percentiles(durations, complete),
            response_latency_ms=_percentiles(latencies, measured),
        )
    return TurnFigures(since=since, until=until, bot_id=bot_id, roles=by_role)


def _percentiles(values: list[float], count: int) -> Percentiles | None:
    if not count:
        return None
    p50, p90, p95, p99 = values
    return Percentiles(count=count, p50=p50, p90=p90, p95=p95, p99=p99)
