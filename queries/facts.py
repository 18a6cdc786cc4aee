"""The analytics' sessions: each session's turns in their latest versions, in speaking order,
and what its completeness needs, from a cache where it holds them (the tables of
``consumers.storage.session_facts``) and from the live tables where it does not.

``FactsKeeper.refresh`` keeps the cache: it folds again every session that anything was
projected for since its last mark, writes the session's slices (its turns by the hour and
bot they started in), and marks how far it got. ``sessions_in`` reads a range: the cached slices of
its hours, except for the sessions projected after the mark, which it folds from the live
tables as the cache would. So a call projected a second ago is counted, and each turn once,
in its latest version, whichever way it was read. Without a mark for the store's
generations (a new store, or a rebuild just cut over) every session is folded live until a
refresh has cached them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from consumers.storage.session_facts import COMPLETENESS, FACT_TURN, FACT_TURN_TYPE
from queries.analytics import matching
from queries.reader import Reader
from queries.sealing import SEALS_CHUNK_HOLES, SEALS_ENDS
from queries.turns import SUMMARY_FIELDS, session_turns, turn_field

SAFETY = timedelta(seconds=10)
"""A mark lags the engine's clock by this much: what an insert that is under way for less
than this writes is not missed."""
OVERLAP = timedelta(minutes=5)
"""Every ``OVERLAP_EVERY`` refreshes, one folds again the sessions projected this long before
the last mark, so that an insert that took longer than ``SAFETY`` to land is cached too (the
others fold from the last mark: every 2 s, five minutes of a busy store would be folded
again and again)."""
OVERLAP_EVERY = 30
PART_SESSIONS = 250_000
"""The first refresh of a set of generations folds the store in parts of about this many
sessions, to bound its memory."""

_GENERATIONS = (
    "(generation, events_generation, chunks_generation) = ({generation:UInt32}, "
    "{events_generation:UInt32}, {chunks_generation:UInt32})"
)
_SOURCES = (
    ("transcripts_generations", "generation"),
    ("session_events_generations", "events_generation"),
    ("audio_chunks_generations", "chunks_generation"),
)


_PROJECTED_AFTER = " UNION ALL ".join(
    f"SELECT session_id FROM {table} "
    f"WHERE generation = {{{generation}:UInt32}} AND projected_at > {{after:DateTime64(3, 'UTC')}}"
    for table, generation in _SOURCES
)
"""The sessions that anything was projected for after ``{after}``."""


def live_sessions(where: str) -> str:
    """SQL of the sessions with turns matching ``where`` (over ``transcripts_generations``),
    folded from the live tables: ``session_id``, ``turns`` (``FACT_TURN``, the session's
    turns that match, in speaking order) and the ``COMPLETENESS`` columns."""
    picked = ", ".join(f"t.{turn_field(SUMMARY_FIELDS, name)}" for name, _ in FACT_TURN)
    in_where = (
        "session_id IN (SELECT session_id FROM transcripts_generations "
        f"WHERE generation = {{generation:UInt32}} AND {where})"
    )
    return f"""
SELECT
    st.session_id AS session_id,
    arrayMap(t -> CAST(({picked}) AS {FACT_TURN_TYPE}), st.turns) AS turns,
    l.events AS events,
    l.last_seq AS last_seq,
    s.session_ends AS session_ends,
    s.chunk_holes AS chunk_holes,
    s.last_event_at AS last_event_at
FROM ({session_turns(SUMMARY_FIELDS, where)}) AS st
LEFT JOIN (
    SELECT session_id, uniqExactMerge(seqs) AS events, toInt64(max(last_seq)) AS last_seq
    FROM session_summaries_generations
    WHERE generation = {{events_generation:UInt32}} AND {in_where}
    GROUP BY session_id
) AS l ON st.session_id = l.session_id
LEFT JOIN (
    SELECT
        session_id,
        maxIf(last_event_at, generation = {{events_generation:UInt32}}) AS last_event_at,
        {SEALS_ENDS} AS session_ends,
        {SEALS_CHUNK_HOLES} AS chunk_holes
    FROM session_seals_generations
    WHERE generation IN ({{events_generation:UInt32}}, {{chunks_generation:UInt32}})
        AND {in_where}
    GROUP BY session_id
) AS s ON st.session_id = s.session_id
SETTINGS join_use_nulls = 1"""


_COMPLETENESS = ", ".join(name for name, _ in COMPLETENESS)
_CACHED = f"""
FROM session_facts FINAL
WHERE {_GENERATIONS}
    AND hour >= toStartOfHour({{since:DateTime64(6, 'UTC')}})
    AND hour < {{until:DateTime64(6, 'UTC')}}
    AND {{bot}} AND {{fresh}}"""
_CACHED_WHOLE = f"SELECT session_id, turns, {_COMPLETENESS} {_CACHED} AND slices = 1"
"""The cached sessions of one slice, in the range's hours."""
_CACHED_GATHERED = f"""
SELECT
    session_id,
    arrayFlatten(arrayMap(s -> s.2, arraySort(s -> s.1, groupArray(((hour, bot_id), turns)))))
        AS turns,
    {", ".join(f"any({name}) AS {name}" for name, _ in COMPLETENESS)}
{_CACHED} AND slices > 1
GROUP BY session_id"""
"""The cached sessions of several slices with slices in the range's hours, gathered: a
session's slices are always written together, so any of them tells its completeness."""


def sessions_in(bot_id: str | None, through: datetime | None, touched: bool) -> str:
    """SQL of the sessions with turns that started in ``[{since}, {until})`` (of the bot
    ``{bot_id}``, if one): ``session_id``, ``turns``, those turns, and the ``COMPLETENESS``
    columns. From the cache up to its mark ``through`` (bound as ``{after}`` by the caller),
    but the sessions projected after it, if ``touched`` says there are any
    (``projected_after``); from the live tables for those, or for all without a mark."""
    where = matching("", bot_id)
    after = f"session_id IN ({_PROJECTED_AFTER})"
    found = [live_sessions(f"{where} AND {after}" if through else where)]
    if through is not None:
        found = [
            cached.replace("{bot}", "bot_id = {bot_id:String}" if bot_id else "1").replace(
                "{fresh}", f"NOT {after}" if touched else "1"
            )
            for cached in (_CACHED_WHOLE, _CACHED_GATHERED)
        ] + (found if touched else [])
    return f"""
SELECT * FROM (
    SELECT session_id, arrayFilter(t -> {matching("t.", bot_id)}, turns) AS turns, {_COMPLETENESS}
    FROM ({" UNION ALL ".join(f"SELECT * FROM ({each})" for each in found)})
)
WHERE notEmpty(turns)"""


def projected_after(reader: Reader, generations: Generations, through: datetime) -> bool:
    """Whether anything was projected after ``through``."""
    rows = reader.rows(
        f"SELECT 1 FROM ({_PROJECTED_AFTER}) LIMIT 1", **generations.parameters(), after=through
    )
    return bool(rows)


@dataclass(frozen=True)
class Generations:
    transcripts: int
    events: int
    chunks: int

    @classmethod
    def of(cls, reader: Reader) -> Generations:
        return cls(
            reader.generation("transcripts"),
            reader.generation("session_events"),
            reader.generation("audio_chunks"),
        )

    def parameters(self) -> dict[str, Any]:
        return {
            "generation": self.transcripts,
            "events_generation": self.events,
            "chunks_generation": self.chunks,
        }


def mark(reader: Reader, generations: Generations) -> datetime | None:
    """Up to when the cache holds the sessions of ``generations``, if it holds them."""
    rows = reader.rows(
        f"SELECT through FROM session_facts_marks FINAL WHERE {_GENERATIONS}",
        **generations.parameters(),
    )
    return rows[0][0] if rows else None


_SLICES = f"""
INSERT INTO session_facts
SELECT
    {{generation:UInt32}},
    {{events_generation:UInt32}},
    {{chunks_generation:UInt32}},
    slice.1,
    slice.2,
    session_id,
    {{computed_at:DateTime64(6, 'UTC')}},
    length(slices),
    arrayFilter(t -> (toStartOfHour(t.started_at), t.bot_id) = slice, turns),
    {_COMPLETENESS}
FROM (
    SELECT *, arrayDistinct(arrayMap(t -> (toStartOfHour(t.started_at), t.bot_id), turns))
        AS slices
    FROM ({{sessions}})
)
ARRAY JOIN slices AS slice"""
"""A session's slices, one per hour and bot of its turns."""
_EMPTIED = f"""
INSERT INTO session_facts (
    generation, events_generation, chunks_generation, hour, bot_id, session_id, computed_at)
SELECT generation, events_generation, chunks_generation, hour, bot_id, session_id,
    {{computed_at:DateTime64(6, 'UTC')}}
FROM session_facts FINAL
WHERE {_GENERATIONS} AND {{folded}}
    AND computed_at < {{computed_at:DateTime64(6, 'UTC')}} AND notEmpty(turns)"""
"""The slices a refolded session no longer has (a turn's later version started in another
hour), written empty. A session projected anew between the two statements has its older
slices emptied too; readers fold it live (it was projected after the mark) until the next
refresh folds it."""


class FactsKeeper:
    """Keeps the cache of the store's current generations. Several may run at once (service
    replicas): each writes what the live tables say, and the newest of a slice wins."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._reader = Reader(client, pointer_ttl_s=0.0)
        self._refreshes = 0

    def refresh(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Fold the sessions projected since the last mark into the cache, and mark; returns
        how many parts of the store it folded (each of ``PART_SESSIONS`` sessions or fewer
        the first time, one after). When ``stopping`` says so between two parts, it stops
        without marking."""
        generations = Generations.of(self._reader)
        parameters = generations.parameters()
        ((now,),) = self._reader.rows("SELECT now64(6)")
        since = mark(self._reader, generations)
        if since is None:
            ((sessions,),) = self._reader.rows(
                "SELECT uniq(session_id) FROM transcripts_generations "
                "WHERE generation = {generation:UInt32}",
                **parameters,
            )
            parts = max(1, -(-int(sessions) // PART_SESSIONS))
            folds = [f"cityHash64(session_id) % {parts} = {part}" for part in range(parts)]
        else:
            folds = [f"session_id IN ({_PROJECTED_AFTER})"]
            self._refreshes += 1
            again = self._refreshes % OVERLAP_EVERY == 0
            parameters["after"] = since - (OVERLAP if again else timedelta(0))
        for folded in folds:
            if stopping():
                return 0
            bound = parameters | {"computed_at": self._reader.rows("SELECT now64(6)")[0][0]}
            self._client.command(
                _SLICES.replace("{sessions}", live_sessions(folded)), parameters=bound
            )
            self._client.command(_EMPTIED.replace("{folded}", folded), parameters=bound)
        self._client.insert(
            "session_facts_marks",
            [[*generations.parameters().values(), now - SAFETY, now]],
            column_names=[*generations.parameters(), "through", "marked_at"],
        )
        return len(folds)
