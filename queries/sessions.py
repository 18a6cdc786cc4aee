"""Sessions: their summaries, one session in full, and the newest-first listing.

A summary is computed when asked, from the session's turns (folded to their latest versions)
and its event ledger (``queries.summary``), both kept per session as sets in one row of
``session_summaries_generations`` (its ends, newest event and chunks in one of
``session_seals_generations``): a sum kept up to date on insert would count every replayed
duplicate, a set does not. Listing newest first across a million sessions is done in two steps
so that neither reads more than it must:

1. candidates: the sessions with a turn in a time window, from the projection ordered by bot
   and time, newest first by their first turn in the window;
2. summaries of a batch of candidates, read by session key, then the caller's filters.

A session whose first turn lies before the window is left to the next, older window, so the
listing stays in order of first event. Windows widen (an hour, a day, a week, ...) until the
page is full or the time range is exhausted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from queries.chunks import chunk_index
from queries.errors import BadQueryError, NotFoundError
from queries.models import (
    SessionDetail,
    SessionFilters,
    SessionPage,
    SessionSummary,
)
from queries.paging import EARLIEST, as_utc, bounded, decode_cursor, encode_cursor, page_size
from queries.reader import Reader
from queries.sealing import LEDGER_COLUMNS, chunk_figures, figures_of, ledger
from queries.summary import passes, summarize
from queries.turns import SUMMARY_FIELDS, as_turn, in_speaking_order, stored_turns

WINDOWS = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=31),
    timedelta(days=366),
    None,
)
"""How far back each round of candidates reaches from where the last one stopped; None is
everything older."""
_RANGE_FILTERS = ("bot_id", "since", "until")
"""Filters the candidates apply; the others are on a session's aggregates."""
CLOCK_SKEW = timedelta(hours=1)
"""With no upper bound, turns up to this far ahead of this machine's clock are listed."""

_SUMMARIES = """
SELECT s.session_id, s.turns, s.events, s.last_seq, e.last_event_at, e.ends, e.chunks
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

_LEDGERS = f"""
SELECT session_id, {", ".join(LEDGER_COLUMNS)}
FROM session_events_generations
WHERE generation = {{generation:UInt32}} AND session_id IN {{ids:Array(String)}}
GROUP BY session_id"""

_CANDIDATES = """
SELECT session_id, min(started_at) AS first_in_window
FROM transcripts_generations
WHERE generation = {generation:UInt32} AND {bot}
    AND started_at >= {window_lo:DateTime64(6, 'UTC')}
    AND started_at < {window_hi:DateTime64(6, 'UTC')}
GROUP BY session_id
HAVING (first_in_window, session_id) < ({after_at:DateTime64(6, 'UTC')}, {after_id:String})
ORDER BY first_in_window DESC, session_id DESC
LIMIT {batch:UInt32}"""


def summaries(reader: Reader, session_ids: Sequence[str]) -> list[SessionSummary]:
    """Summaries of these sessions (those with turns), newest first.

    They are read from the sessions' rows of ``session_summaries_generations`` and
    ``session_seals_generations``, one per session in each. A session whose turns are already
    visible but whose summary row is not yet (the two are written one after the other) is
    summarized from its turns and ledger instead."""
    if not session_ids:
        return []
    rows = reader.rows(
        _SUMMARIES,
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
                figures_of(chunks or []),
            ),
            clock,
        )
        for s, versions, events, last_seq, last_at, ends, chunks in rows
        if versions
    ]
    summarized = {s.session_id for s in found}
    if missing := [s for s in session_ids if s not in summarized]:
        found += _from_turns(reader, stored_turns(reader, missing, SUMMARY_FIELDS))
    return sorted(found, key=lambda s: (s.first_event_at, s.session_id), reverse=True)


def _from_turns(
    reader: Reader, turns: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[SessionSummary]:
    """Summaries of these sessions from their turns (as ``stored_turns`` gives them), their
    ledgers and their chunks, read here."""
    ids = list(turns)
    rows = reader.rows(_LEDGERS, generation=reader.generation("session_events"), ids=ids)
    chunks = chunk_figures(reader, ids)
    stored = {str(row[0]): row[1:] for row in rows}
    clock = reader.clock()
    return [
        summarize(s, found, ledger(stored.get(s), chunks.get(s, ())), clock)
        for s, found in turns.items()
    ]


def session_detail(reader: Reader, session_id: str) -> SessionDetail:
    turns = stored_turns(reader, [session_id]).get(session_id)
    if not turns:
        raise NotFoundError(f"no session {session_id!r} in the store")
    return SessionDetail(
        summary=_from_turns(reader, {session_id: turns})[0],
        turns=[as_turn(t) for t in turns],
        chunks=chunk_index(reader, session_id),
    )


def list_sessions(
    reader: Reader,
    filters: SessionFilters,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> SessionPage:
    """Sessions newest first (by first event), filtered, ``limit`` at a time."""
    limit = page_size(limit)
    low, high = filters.min_turns, filters.max_turns
    if low is not None and high is not None and low > high:
        raise BadQueryError("min_turns", "must not exceed max_turns")
    filters = filters.model_copy(
        update={k: bounded(v) for k in ("since", "until") if (v := getattr(filters, k))}
    )
    if filters.since and filters.until and filters.since >= filters.until:
        raise BadQueryError("since", "must be before until")
    after_at, after_id = (
        decode_cursor("sessions", cursor, (datetime, str))
        if cursor
        else (filters.until or datetime.now(UTC) + CLOCK_SKEW, "\uffff")
    )
    by_aggregate = any(
        v is not None for k, v in filters.model_dump().items() if k not in _RANGE_FILTERS
    )
    found: list[SessionSummary] = []
    for window_lo, window_hi in _windows(after_at, filters.since):
        batches = _candidate_batches(
            reader, filters.bot_id, window_lo, window_hi, (after_at, after_id), by_aggregate, limit
        )
        for batch in batches:
            found += [
                s
                for s in summaries(reader, batch)
                if window_lo <= s.first_event_at < window_hi
                and (s.first_event_at, s.session_id) < (after_at, after_id)
                and (filters.until is None or s.first_event_at < filters.until)
                and passes(s, filters)
            ]
            if len(found) > limit:
                return _page(found, limit)
    return _page(found, limit)


def _page(found: list[SessionSummary], limit: int) -> SessionPage:
    """The first ``limit`` of ``found``, and a cursor after them if there were more."""
    page = found[:limit]
    return SessionPage(
        items=page,
        next_cursor=(
            encode_cursor("sessions", page[-1].first_event_at, page[-1].session_id)
            if len(found) > limit
            else None
        ),
    )


def _windows(newest: datetime, since: datetime | None) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive, older and older time windows ending at ``newest``, down to ``since``."""
    floor = since or EARLIEST
    hi = newest + timedelta(microseconds=1)  # the cursor's own first event time is included
    for span in WINDOWS:
        lo = floor if span is None else max(floor, hi - span)
        if lo < hi:
            yield lo, hi
        hi = lo
        if lo <= floor:
            return


def _candidate_batches(
    reader: Reader,
    bot_id: str | None,
    window_lo: datetime,
    window_hi: datetime,
    after: tuple[datetime, str],
    by_aggregate: bool,
    limit: int,
) -> Iterator[list[str]]:
    """Session ids with a turn in the window, newest first by that turn, in growing batches:
    a page without filters on aggregates is usually filled by its first."""
    batch = min(4 * (limit + 1), 2_000) if by_aggregate else limit + 1
    after_at, after_id = after
    sql = _CANDIDATES.replace("{bot}", "bot_id = {bot_id:String}" if bot_id else "1")
    while True:
        rows = reader.rows(
            sql,
            generation=reader.generation("transcripts"),
            bot_id=bot_id or "",
            window_lo=window_lo,
            window_hi=window_hi,
            after_at=after_at,
            after_id=after_id,
            batch=batch,
        )
        if not rows:
            return
        yield [str(r[0]) for r in rows]
        if len(rows) < batch:
            return
        after_at, after_id = as_utc(rows[-1][1]), str(rows[-1][0])
        batch = min(batch * 2, 10_000)
