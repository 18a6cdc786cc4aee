"""Slices (``queries.slices``) summed into the rows of the rollups
(``consumers.storage.session_facts``): per bucket, bot and group, counts, sums and percentile
states. One SQL serves both ends: ``FactsKeeper`` sums the cached slices of an hour into its
rollup rows, and ``queries.metrics`` sums the slices it must fold (the hours a rollup does
not hold yet, minute buckets) and merges them with the rollup rows it reads.

A turn is summed into the bucket of its start, a session into that of its first turn (of its
first event, without turns: ``opened_at``); the turn's latency and the session's figures were
folded with the whole session, so a bucket needs no other.
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from analytics.definitions import LEVELS
from consumers.storage.session_facts import ROLLUP_KEYS, ROLLUP_VALUES

PERCENTILES = f"({', '.join(map(str, LEVELS))})"
CACHED_GENERATIONS = (
    "(generation, events_generation, chunks_generation) = ({generation:UInt32}, "
    "{events_generation:UInt32}, {chunks_generation:UInt32})"
)
"""SQL of whether a row of the cache's tables was folded from the current generations (bound
by the caller)."""
_AT = "toStartOfInterval({}, toIntervalSecond({{bucket_s:UInt32}}))"
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
    quantilesStateIf{PERCENTILES}(assumeNotNull(t.duration_ms), t.duration_ms IS NOT NULL)
        AS durations,
    toInt64(coalesce(sum(t.duration_ms), 0)) AS talk_ms,
    countIf(t.response_latency_ms IS NOT NULL) AS latencies_n,
    quantilesStateIf{PERCENTILES}(
        assumeNotNull(t.response_latency_ms), t.response_latency_ms IS NOT NULL) AS latencies,
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
    quantilesStateIf{PERCENTILES}(overlap_ms, notEmpty(turns)) AS overlaps,
    sum(silence_ms) AS silence_ms_total,
    quantilesStateIf{PERCENTILES}(silence_ms, notEmpty(turns)) AS silences,
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


def rolled(table: str, where: str) -> str:
    """SQL of the rows of ``table`` of the current generations (bound by the caller) that
    ``where`` keeps."""
    columns = (*ROLLUP_KEYS[table], *(name for name, _ in ROLLUP_VALUES[table]))
    return f"SELECT {', '.join(columns)} FROM {table} FINAL WHERE {CACHED_GENERATIONS} AND {where}"


_REFRESHED = f"""(hour, bot_id) IN (
    SELECT hour, bot_id FROM session_slices
    WHERE {CACHED_GENERATIONS} AND computed_at >= {{refreshed_from:DateTime64(6, 'UTC')}})"""
"""The hours and bots of the slices written since ``{refreshed_from}``."""


def roll_up(client: Client, parameters: dict[str, object]) -> None:
    """Sum again the hours and bots of the slices written since ``{refreshed_from}`` into
    their rollup rows, and delete the rows of theirs that no slice holds any more (a turn's
    language changed, a session moved to another hour). ``parameters`` binds the
    generations, ``refreshed_from`` and ``computed_at``, which the rows are written at."""
    generations = "{generation:UInt32}, {events_generation:UInt32}, {chunks_generation:UInt32}"
    slices = f"SELECT * FROM session_slices FINAL WHERE {CACHED_GENERATIONS} AND {_REFRESHED}"
    bound = parameters | {"bucket_s": 3600}
    for table, keys in ROLLUP_KEYS.items():
        values = ", ".join(name for name, _ in ROLLUP_VALUES[table])
        key = ", ".join(keys)
        client.command(
            f"INSERT INTO {table} SELECT {generations}, {key}, "
            f"{{computed_at:DateTime64(6, 'UTC')}}, 0, {values} "
            f"FROM ({states(table, slices, '1')})",
            parameters=bound,
        )
        client.command(
            f"INSERT INTO {table} (generation, events_generation, chunks_generation, {key}, "
            f"computed_at, deleted) SELECT generation, events_generation, chunks_generation, "
            f"{key}, {{computed_at:DateTime64(6, 'UTC')}}, 1 FROM {table} FINAL "
            f"WHERE {CACHED_GENERATIONS} AND {_REFRESHED} "
            "AND computed_at < {computed_at:DateTime64(6, 'UTC')}",
            parameters=bound,
        )
