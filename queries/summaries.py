"""Sessions' summaries as the store holds them now: each made by ``queries.summary`` from the
session's rows of ``session_summaries_generations`` and ``session_seals_generations`` (its
turns and ledger in sets, its ends, newest event and chunks), or from its turns themselves.
The listing reads them through its cache (``queries.cards``), which they fill."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from queries.completeness import Ledger, TrackSeen
from queries.errors import no_session
from queries.models import SessionSummary
from queries.reader import Reader
from queries.sealing import (
    LEDGER_COLUMNS,
    chunk_figures,
    figures_of,
    first_events,
    ledger,
    track_figures,
)
from queries.summary import summarize, summarize_silent
from queries.turns import SUMMARY_FIELDS, in_speaking_order, stored_turns

Figures = Mapping[str, tuple[TrackSeen, ...]]
"""Per session with chunks, what the store holds of each track (``chunk_figures``)."""

_SUMMARIES = """
SELECT s.session_id, s.turns, s.events, s.last_seq, e.last_event_at, e.ends, {chunks}
FROM (
    SELECT
        session_id,
        groupUniqArrayMergeIf(turns, generation = {turns_at:UInt32}) AS turns,
        uniqExactMergeIf(seqs, generation = {events_at:UInt32}) AS events,
        maxIf(last_seq, generation = {events_at:UInt32}) AS last_seq
    FROM session_summaries_generations
    WHERE generation IN ({turns_at:UInt32}, {events_at:UInt32})
        AND session_id IN {ids:Array(String)}
    GROUP BY session_id
) AS s
LEFT JOIN (
    SELECT
        session_id,
        maxIf(last_event_at, generation = {events_at:UInt32}) AS last_event_at,
        groupUniqArrayMergeIf(ends, generation = {events_at:UInt32}) AS ends,
        groupUniqArrayMergeIf(chunks, generation = {chunks_at:UInt32}) AS chunks
    FROM session_seals_generations
    WHERE generation IN ({events_at:UInt32}, {chunks_at:UInt32})
        AND session_id IN {ids:Array(String)}
    GROUP BY session_id
) AS e ON s.session_id = e.session_id
SETTINGS join_use_nulls = 1"""


def silent_ids(picks: str) -> str:
    """SQL of the sessions ``picks`` picks (a fragment over ``session_id``) that have events
    but no turns; ``{generation}`` (of the transcripts) and ``{events_generation}`` bound by
    the caller. The events are those of the ledger itself, not of the summaries' table (a
    row or two per session rather than one per event): a view fills that one on the same
    insert, and a refresh that saw the insert listed before the view had written would have
    missed the session for good. ``EXCEPT`` alone would be ``EXCEPT ALL``, which took a
    session with two ledger rows and one turn, once merged to one row, for a silent one."""
    return f"""
SELECT session_id FROM session_events_generations
WHERE generation = {{events_generation:UInt32}} AND {picks}
EXCEPT DISTINCT SELECT session_id FROM transcripts_generations
WHERE generation = {{generation:UInt32}} AND {picks}"""


def silent_sessions(picks: str) -> str:
    """SQL of whether a row's session is one of ``silent_ids(picks)``."""
    return f"session_id IN ({silent_ids(picks)})"


_KNOWN = """
SELECT 1 FROM session_events_generations
WHERE generation = {events_generation:UInt32} AND session_id = {session_id:String}
LIMIT 1
UNION ALL
SELECT 1 FROM audio_chunks_generations
WHERE generation = {chunks_generation:UInt32} AND session_id = {session_id:String}
LIMIT 1"""
_LEDGERS = first_events("session_id IN {ids:Array(String)}", *LEDGER_COLUMNS)


def summaries(
    reader: Reader, session_ids: Sequence[str], *, in_bulk: bool = False
) -> list[SessionSummary]:
    """Summaries of these sessions (those with turns), newest first.

    They are read from the sessions' rows of ``session_summaries_generations`` and
    ``session_seals_generations``, one per session in each. A session whose turns are already
    visible but whose summary row is not yet (the two are written one after the other) is
    summarized from its turns and ledger instead. ``in_bulk`` (a refresh's thousands): the
    engine counts the chunks (``track_figures``), where Python spent a fifth of the time
    summarizing; for a page's few, Python does (50 sessions: 11 ms against 17)."""
    if not session_ids:
        return []
    chunks, counted = (
        (track_figures("e.chunks"), _as_figures) if in_bulk else ("e.chunks", figures_of)
    )
    rows = reader.rows(
        _SUMMARIES.replace("{chunks}", chunks),
        turns_at=reader.generation("transcripts"),
        events_at=reader.generation("session_events"),
        chunks_at=reader.generation("audio_chunks"),
        ids=list(session_ids),
    )
    clock = reader.clock()
    found = [
        summarize(
            str(s),
            in_speaking_order(versions),
            ledger(
                (events, last_seq, last_at, ends or []) if events else None,
                counted(chunks or []),
            ),
            clock,
        )
        for s, versions, events, last_seq, last_at, ends, chunks in rows
        if versions
    ]
    summarized = {s.session_id for s in found}
    if missing := [s for s in session_ids if s not in summarized]:
        found += from_turns(reader, stored_turns(reader, missing, SUMMARY_FIELDS))
    return sorted(found, key=lambda s: (s.first_event_at, s.session_id), reverse=True)


def _as_figures(found: Sequence[Sequence[Any]]) -> tuple[TrackSeen, ...]:
    """``track_figures`` as the engine returns them."""
    return tuple(TrackSeen(*figures) for figures in found)


def silent_summaries(
    reader: Reader, session_ids: Sequence[str], chunks: Figures | None = None
) -> list[SessionSummary]:
    """Summaries of these sessions from their events alone, for sessions without turns (a
    call nobody spoke in): those with no event stored are left out. ``chunks``: the
    sessions' chunk figures if the caller holds them, else read here."""
    if not session_ids:
        return []
    clock = reader.clock()
    return [
        summarize_silent(s, *first, held, clock)
        for s, (first, held) in _ledgered(reader, session_ids, chunks).items()
        if first is not None
    ]


def from_turns(
    reader: Reader,
    turns: Mapping[str, Sequence[Mapping[str, Any]]],
    chunks: Figures | None = None,
) -> list[SessionSummary]:
    """Summaries of these sessions from their turns (as ``stored_turns`` gives them), their
    ledgers and their chunks (as ``silent_summaries`` takes them)."""
    held = ledgers(reader, list(turns), chunks)
    clock = reader.clock()
    return [summarize(s, found, held.get(s), clock) for s, found in turns.items()]


def require_known(reader: Reader, session_id: str) -> None:
    """Refuse a session of which the store holds no event and no chunk: asked by a read that
    found no turn of it, to tell a call nobody spoke in from an id the store does not know."""
    if not reader.rows(
        _KNOWN,
        events_generation=reader.generation("session_events"),
        chunks_generation=reader.generation("audio_chunks"),
        session_id=session_id,
    ):
        raise no_session(session_id)


def ledgers(
    reader: Reader, session_ids: Sequence[str], chunks: Figures | None = None
) -> dict[str, Ledger]:
    """Per session with events or chunks stored, its ledger with its chunks' figures."""
    return {s: held for s, (_, held) in _ledgered(reader, session_ids, chunks).items()}


def _ledgered(
    reader: Reader, session_ids: Sequence[str], chunks: Figures | None
) -> dict[str, tuple[tuple[str, datetime] | None, Ledger]]:
    """Per session with events or chunks stored, its bot and first event's time (None
    without events) and its ledger: a session without turns is summarized from these."""
    if not session_ids:
        return {}
    rows = reader.rows(
        _LEDGERS, events_generation=reader.generation("session_events"), ids=list(session_ids)
    )
    if chunks is None:
        chunks = chunk_figures(reader, session_ids)
    firsts = {str(s): (str(bot_id), first_at) for s, first_at, bot_id, *_ in rows}
    stored = {str(s): held for s, _, _, *held in rows}
    return {
        s: (firsts.get(s), ledger(stored.get(s), chunks.get(s, ()))) for s in {*stored, *chunks}
    }
