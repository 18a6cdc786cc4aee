"""Slices (``queries.slices``) summed into the rows of the rollups
(``consumers.storage.session_facts``): per bucket, bot and group, counts, sums and percentile
states. One SQL serves both ends: ``FactsKeeper`` sums the cached slices of an hour into its
rollup rows, and ``queries.metrics`` sums the slices it must fold (the hours a rollup does
not hold yet, minute buckets) and merges them with the rollup rows it reads. The rows of all
bots (``ALL_BOTS``) are summed from those of each bot, an hour at a time.

A turn is summed into the bucket of its start, a session into that of its first turn (of its
first event, without turns: ``opened_at``); the turn's latency and the session's figures were
folded with the whole session, so a bucket needs no other.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from consumers.storage.session_facts import (
    ALL_BOTS,
    ALL_BOTS_KEYS,
    PERCENTILES,
    ROLLUP_KEYS,
    ROLLUP_VALUES,
    quantiles,
)
from queries.reader import Reader

CACHED_GENERATIONS = (
    "(generation, events_generation, chunks_generation) = ({generation:UInt32}, "
    "{events_generation:UInt32}, {chunks_generation:UInt32})"
)
"""SQL of whether a row of the cache's tables was folded from the current generations (bound
by the caller)."""
_AT = "toStartOfInterval({}, toIntervalSecond({{bucket_s:UInt32}}))"
_STATE = quantiles("StateIf")
_STATES = {
    "turn_rollups": f"""
SELECT
    {_AT.format("t.started_at")} AS hour,
    t.bot_id AS bot_id,
    t.framework AS framework,
    ifNull(toString(t.language), '') AS language,
    t.role AS role,
    count() AS turns_n,
    countIf(t.duration_ms IS NOT NULL) AS timed_n,
    {_STATE}(assumeNotNull(t.duration_ms), t.duration_ms IS NOT NULL) AS durations,
    toInt64(coalesce(sum(t.duration_ms), 0)) AS talk_ms,
    countIf(t.response_latency_ms IS NOT NULL) AS latencies_n,
    {_STATE}(assumeNotNull(t.response_latency_ms), t.response_latency_ms IS NOT NULL)
        AS latencies,
    countIf(t.interrupted) AS interruptions,
    countIf(t.timed_out) AS timeouts
FROM ({{slices}})
ARRAY JOIN turns AS t
WHERE {{picked}}
GROUP BY hour, bot_id, framework, language, role""",
    "session_rollups": f"""
SELECT
    {_AT.format("opened_at")} AS hour,
    bot_id,
    turns[1].framework AS framework,
    session_language AS language,
    count() AS sessions_n,
    sum(call_ms) AS call_ms_total,
    sum(overlap_ms) AS overlap_ms_total,
    {_STATE}(overlap_ms, notEmpty(turns)) AS overlaps,
    sum(silence_ms) AS silence_ms_total,
    {_STATE}(silence_ms, notEmpty(turns)) AS silences,
    countIf(ended = 'sealed') AS sealed_n,
    countIf(ended = 'sealed_with_holes') AS holed_n,
    groupArrayIf(last_active_at, ended IS NULL) AS unsealed,
    countIf(notEmpty(turns)) AS spoken_n,
    sum(session_interruptions) AS interruptions_in_sessions
FROM ({{slices}})
WHERE opens AND {{picked}}
GROUP BY hour, bot_id, framework, language""",
}
"""Per rollup, SQL of the rows that ``{slices}`` sum to, per bucket of ``{bucket_s}``
seconds: of their turns (``turn_rollups``) or of the sessions they open
(``session_rollups``), those that ``{picked}`` keeps (over ``t``, the turn, or over the
slice, whose ``opened_at`` places its session). A session without turns has no framework
(''), and its overlap and silence, 0, are not among the percentiles'."""


def states(table: str, slices: str, picked: str) -> str:
    """SQL of the rows of ``table`` that ``slices`` sum to, of what ``picked`` keeps."""
    return _STATES[table].replace("{slices}", slices).replace("{picked}", picked)


def rolled(table: str, where: str, *, all_bots: bool = False) -> tuple[str, str]:
    """SQL of the rows of ``table`` of the current generations (bound by the caller) that
    ``where`` keeps, as a ``SELECT`` of its columns and as the clauses from ``FROM`` on (a
    reader of those rows alone reads them without a subquery: the engine takes about 1 ms
    to plan each nested one, and one bot's day of analytics took 30.1 ms in process with
    them, 24.2 without, a timing script); with ``all_bots``, of those summed over bots
    (``ALL_BOTS``), named bot '' in the ``SELECT``."""
    keys = ("'' AS bot_id" if all_bots and key == "bot_id" else key for key in ROLLUP_KEYS[table])
    columns = (*keys, *(name for name, _ in ROLLUP_VALUES[table]))
    source = ALL_BOTS[table] if all_bots else table
    clauses = f"{source} FINAL WHERE {CACHED_GENERATIONS} AND {where}"
    return f"SELECT {', '.join(columns)} FROM {clauses}", clauses


_SLICES_SINCE = f"""SELECT {{columns}} FROM session_slices
    WHERE {CACHED_GENERATIONS} AND computed_at >= {{refreshed_from:DateTime64(6, 'UTC')}}"""
_REFRESHED = f"(hour, bot_id) IN ({_SLICES_SINCE.replace('{columns}', 'hour, bot_id')})"
"""The hours and bots of the slices written since ``{refreshed_from}``."""
_REFRESHED_HOURS = f"hour IN ({_SLICES_SINCE.replace('{columns}', 'hour')})"
"""The hours of the slices written since ``{refreshed_from}``."""


def roll_up(reader: Reader, parameters: dict[str, object], now: Callable[[], datetime]) -> None:
    """Sum again the hours and bots of the slices written since ``{refreshed_from}`` into
    their rollup rows, then those hours' rows into the rows of all bots. ``parameters``
    binds the generations and ``refreshed_from``; each set of rows is written at the
    engine's time ``now`` gives as it begins: the rows of all bots, once each bot's have
    landed, so of two keepers summing an hour at once, the one that read before the other's
    rows landed has the older rows, which the newer replace (at the refresh's start, its sum
    could win without them)."""
    slices = f"SELECT * FROM session_slices FINAL WHERE {CACHED_GENERATIONS} AND {_REFRESHED}"
    bound = parameters | {"bucket_s": 3600, "computed_at": now()}
    values = {table: tuple(name for name, _ in kinds) for table, kinds in ROLLUP_VALUES.items()}
    for table, keys in ROLLUP_KEYS.items():
        rows = f"SELECT {', '.join((*keys, *values[table]))} FROM ({states(table, slices, '1')})"
        _replace(reader, table, keys, values[table], rows, _REFRESHED, bound)
    bound |= {"computed_at": now()}
    for table, keys in ALL_BOTS_KEYS.items():
        by_hour = ", ".join(keys)
        summed = ", ".join(_summed(name, kind) for name, kind in ROLLUP_VALUES[table])
        rows = (
            f"SELECT {by_hour}, {summed} FROM {table} FINAL "
            f"WHERE {CACHED_GENERATIONS} AND {_REFRESHED_HOURS} GROUP BY {by_hour}"
        )
        _replace(reader, ALL_BOTS[table], keys, values[table], rows, _REFRESHED_HOURS, bound)


def _summed(name: str, kind: str) -> str:
    """SQL of a rollup value over several rows."""
    if kind == PERCENTILES:
        return f"{quantiles('MergeState')}({name})"
    return f"groupArrayArray({name})" if kind.startswith("Array(") else f"sum({name})"


def _replace(
    reader: Reader,
    table: str,
    keys: tuple[str, ...],
    values: tuple[str, ...],
    rows: str,
    refreshed: str,
    bound: dict[str, object],
) -> None:
    """Write ``rows`` (their keys, then values) into ``table``, and its rows that
    ``refreshed`` keeps and ``rows`` did not write again as deleted: nothing holds them any
    more (a turn's language changed, a session moved to another hour)."""
    generations = "generation, events_generation, chunks_generation"
    key = ", ".join(keys)
    at = "{computed_at:DateTime64(6, 'UTC')}"
    reader.command(
        f"INSERT INTO {table} ({generations}, {key}, {', '.join(values)}, computed_at, deleted) "
        "SELECT {generation:UInt32}, {events_generation:UInt32}, {chunks_generation:UInt32}, "
        f"*, {at}, 0 FROM ({rows})",
        **bound,
    )
    reader.command(
        f"INSERT INTO {table} ({generations}, {key}, computed_at, deleted) "
        f"SELECT {generations}, {key}, {at}, 1 FROM {table} FINAL "
        f"WHERE {CACHED_GENERATIONS} AND {refreshed} AND computed_at < {at}",
        **bound,
    )
