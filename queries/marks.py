"""How far the store's caches go (the analytics' slices and rollups, the listing's cards): the
generations they were folded from, the mark up to which they hold those generations' sessions,
and which sessions were projected after it, which readers take from the live tables instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consumers.storage.migrations import PROJECTED_SESSIONS_KEPT_DAYS
from queries.reader import Reader
from queries.rollups import CACHED_GENERATIONS
from queries.summaries import silent_ids

_SOURCES = (
    ("transcripts", "generation"),
    ("session_events", "events_generation"),
    ("audio_chunks", "chunks_generation"),
)
"""The projections the caches are folded from, and the parameter naming each one's
generation."""
_OF_SOURCES = ", ".join(
    f"('{projection}', {{{generation}:UInt32}})" for projection, generation in _SOURCES
)
"""SQL of the projections and their generations, to match ``(source, generation)`` to."""


def projected(after: str, upto: str | None = None, what: str = "session_id") -> str:
    """SQL of the sessions that anything was projected for after the time parameter ``after``
    (and by ``upto``, if named), from ``projected_sessions``, which every insert into the
    three tables adds its sessions to, with ``what`` of each insert (its columns: ``source``,
    ``session_id``, ``projected_at``)."""
    when = f"projected_at > {{{after}:DateTime64(3, 'UTC')}}"
    if upto is not None:
        when += f" AND projected_at <= {{{upto}:DateTime64(3, 'UTC')}}"
    return (
        f"SELECT {what} FROM projected_sessions "
        f"WHERE (source, generation) IN ({_OF_SOURCES}) AND {when}"
    )


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
    """Up to when the caches hold the sessions of ``generations``, if they hold them: a mark
    older than ``projected_sessions`` keeps its rows is none, as what was projected after it
    can no longer be told. A mark is read again at most once per second (``Reader.held``): a
    read that takes an older one folds live what the cache also holds, and passes over it in
    the cache, with the same answer (the statement took 4-6 ms of a read under ingest)."""
    return reader.held(("mark", generations), lambda: _mark(reader, generations))


def _mark(reader: Reader, generations: Generations) -> datetime | None:
    rows = reader.rows(
        f"SELECT through FROM session_facts_marks FINAL WHERE {CACHED_GENERATIONS} AND through "
        f"> now64(3) - INTERVAL {PROJECTED_SESSIONS_KEPT_DAYS} DAY",
        **generations.parameters(),
    )
    return rows[0][0] if rows else None


TOUCHED = "session_id IN {touched_ids:Array(String)}"
"""SQL of whether a row's session was projected after the mark, ``{touched_ids}`` bound by
``Touched.parameters``."""
MAYBE_TOUCHED = "cityHash64(session_id) IN {touched_hashes:Array(UInt64)}"
"""SQL of whether a row's session may have been projected after the mark (``TOUCHED``, and
whatever shares a hash with one of those), for a statement that only filters what it reads by
bot and time: an ``IN`` over thousands of ids has the engine match them against the session
key of every part first (a page's candidates, 3 600 ids: 20 ms instead of 11), and a hash
is in no key. Where a statement finds the sessions by their key, ``TOUCHED`` is cheaper."""


SILENT = "session_id IN {silent:Array(String)}"
"""SQL of whether a row's session is one of those projected after the mark without turns
(``Touched.silent``)."""


@dataclass(frozen=True)
class Touched:
    """The sessions projected after a mark, asked once by a read that takes them live: its
    statements then name them rather than each finding them again in every table they were
    projected to (under ingest, six times for one analytics read)."""

    ids: list[str]
    hashes: list[int]
    silent: list[str] = field(default_factory=list)
    """Those without turns (calls nobody spoke in), which reads find in the ledger: nearly
    always none, so that a read's statements name none. A read checks them again
    (``silent_sessions(SILENT)``), as a turn may land between this list and its statements;
    a session whose first turn lands just then may be missed by a read that looks for those
    with turns and those without in two statements (the listing looks in one)."""

    def parameters(self) -> dict[str, Any]:
        return {"touched_ids": self.ids, "touched_hashes": self.hashes, "silent": self.silent}


def touched_since(reader: Reader, generations: Generations, through: datetime) -> Touched:
    """The sessions projected after the mark ``through``, in one statement: with none, it
    costs what asking whether there are any does (``projected_after``, 1.9 ms against 2.0 at
    1M sessions), and under ingest there always are, where asking first took 2-6 ms more.
    Those of them that had no turn projected after the mark (under ingest, many: their chunks
    and events came in on their own) are then looked up by key in a second statement, for
    turns stored before it: the rest have turns."""
    rows = reader.rows(
        "SELECT session_id, cityHash64(session_id), max(source = 'transcripts') "
        f"FROM ({projected('after', what='source, session_id')}) GROUP BY session_id",
        **generations.parameters(),
        after=through,
    )
    unspoken = [str(s) for s, _, spoke in rows if not spoke]
    silent = (
        reader.rows(
            silent_ids("session_id IN {unspoken:Array(String)}"),
            **generations.parameters(),
            unspoken=unspoken,
        )
        if unspoken
        else []
    )
    return Touched(
        [str(s) for s, _, _ in rows], [int(h) for _, h, _ in rows], [str(s) for (s,) in silent]
    )


def projected_after(reader: Reader, generations: Generations, through: datetime) -> bool:
    """Whether anything was projected after ``through``: the first of ``projected_sessions``
    in its order after that time, if there is one."""
    return bool(
        reader.rows(
            f"SELECT 1 FROM ({projected('after')}) LIMIT 1",
            **generations.parameters(),
            after=through,
        )
    )
