"""Sessions: one session in full, and the newest-first listing.

A summary (``queries.summaries``) is made from the session's turns (folded to their latest
versions) and its event ledger, both kept per session as sets: a sum kept up to date on insert
would count every replayed duplicate, a set does not. The listing reads the summaries of the
sessions the caches hold as cards (``queries.cards``), in its own order; it makes those of the
sessions projected after the caches' mark, or of all of them without a cache, in two steps so
that neither reads more than it must:

1. candidates: the sessions with a turn in a time window, from the projection ordered by bot
   and time, newest first by their first turn in the window;
2. summaries of a batch of candidates, read by session key.

A session without turns (a call nobody spoke in) is a candidate by its first event, found in
the ledger among the sessions without turns, by the same statement. The caller's filters are
taken from the summaries. A session whose first turn lies before the window is left to the
next, older window, so the listing stays in order of first event. Windows widen (an hour, a
day, a week, ...) until the page is full or the time range is exhausted.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from queries.cards import EVERY_SESSION, Among, Cards
from queries.chunks import chunk_index
from queries.errors import BadQueryError, no_session
from queries.marks import Generations
from queries.models import (
    SessionDetail,
    SessionFilters,
    SessionPage,
    SessionSummary,
    Turn,
)
from queries.paging import (
    EARLIEST,
    decode_cursor,
    encode_cursor,
    fingerprint,
    page_size,
    store_range,
    window_batches,
)
from queries.reader import Reader
from queries.sealing import first_events, index_figures
from queries.summaries import (
    Figures,
    from_turns,
    require_known,
    silent_summaries,
    summaries,
)
from queries.summary import passes
from queries.turns import SHOWN_FIELDS, as_turn, stored_turns

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

_SPOKEN = """
SELECT min(started_at) AS first_in_window, session_id, 1 AS spoken
FROM transcripts_generations
WHERE generation = {generation:UInt32} AND {bot} AND {among}
    AND started_at >= {window_lo:DateTime64(6, 'UTC')}
    AND started_at < {window_hi:DateTime64(6, 'UTC')}
GROUP BY session_id
HAVING (first_in_window, session_id) < ({after_at:DateTime64(6, 'UTC')}, {after_id:String})
ORDER BY first_in_window DESC, session_id DESC
LIMIT {batch:UInt32}"""
"""The sessions with a turn in the window, newest first by their first turn in it."""
_SILENT = f"""
SELECT first_event_at, session_id, 0
FROM ({first_events("{silent}")})
WHERE ({{bot_id:String}} = '' OR first_bot_id = {{bot_id:String}})
    AND first_event_at >= {{window_lo:DateTime64(6, 'UTC')}}
    AND first_event_at < {{window_hi:DateTime64(6, 'UTC')}}
    AND (first_event_at, session_id) < ({{after_at:DateTime64(6, 'UTC')}}, {{after_id:String}})
ORDER BY first_event_at DESC, session_id DESC
LIMIT {{batch:UInt32}}"""
"""The sessions without turns (``{silent}``: ``Among.silent``) whose first event lies in the
window, newest first; of a bot, if one is asked for, by the bot of that first event."""
_BOTH = f"""
SELECT * FROM ({_SPOKEN} UNION ALL {_SILENT})
ORDER BY first_in_window DESC, session_id DESC
LIMIT {{batch:UInt32}}"""
"""Both kinds in one statement, so that a session whose first turn lands while the listing
reads is of one kind or the other in each batch. With a statement per kind, each read in its
own batches, it could be of neither: the one of sessions with turns read past its place
before the turn landed, the one of those without reached it after."""


def session_detail(reader: Reader, session_id: str) -> SessionDetail:
    """The summary's completeness counts the chunks the index shows, read once."""
    turns = stored_turns(reader, [session_id]).get(session_id)
    chunks = chunk_index(reader, session_id)
    figures = {session_id: index_figures(chunks)} if chunks else {}
    summary = (
        from_turns(reader, {session_id: turns}, figures)[0]
        if turns
        else _silent(reader, session_id, figures)
    )
    return SessionDetail(summary=summary, turns=[as_turn(t) for t in turns or ()], chunks=chunks)


def transcript(reader: Reader, session_id: str) -> list[Turn]:
    """A session's turns in speaking order: none for a call nobody spoke in, which the store
    knows by its events or chunks."""
    turns = stored_turns(reader, [session_id], SHOWN_FIELDS).get(session_id)
    if turns:
        return [as_turn(t) for t in turns]
    require_known(reader, session_id)
    return []


def _silent(reader: Reader, session_id: str, chunks: Figures) -> SessionSummary:
    """The summary of a session without turns, from its events."""
    for summary in silent_summaries(reader, [session_id], chunks):
        return summary
    raise no_session(session_id)


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
    since, until = store_range(filters.since, filters.until)
    filters = filters.model_copy(update={"since": since, "until": until})
    query = fingerprint("sessions", filters.model_dump())
    after_at, after_id = (
        decode_cursor(query, cursor, (datetime, str))
        if cursor
        else (until or datetime.now(UTC) + CLOCK_SKEW, "\uffff")
    )
    by_aggregate = any(
        v is not None for k, v in filters.model_dump().items() if k not in _RANGE_FILTERS
    )
    cards = Cards.of(reader)
    found: list[SessionSummary] = []
    seen: set[str] = set()
    for window in _windows(after_at, filters.since):
        for s in _in_window(
            reader, cards, filters.bot_id, window, (after_at, after_id), by_aggregate, limit
        ):
            if s.session_id in seen:
                continue  # met without turns, then where its first turn, landed meanwhile, lies
            seen.add(s.session_id)
            if _in_range(s, filters) and passes(s, filters):
                found.append(s)
                if len(found) > limit:
                    return _page(query, found, limit)
    return _page(query, found, limit)


def _in_range(summary: SessionSummary, filters: SessionFilters) -> bool:
    """Whether the session is of the bot and before the time asked for. Candidates are found
    by their turns of that bot in a window, but a session belongs to the bot of its first
    turn (or event), as in its summary and the analytics, and lies where that began."""
    return (filters.bot_id is None or summary.bot_id == filters.bot_id) and (
        filters.until is None or summary.first_event_at < filters.until
    )


def _in_window(
    reader: Reader,
    cards: Cards | None,
    bot_id: str | None,
    window: tuple[datetime, datetime],
    after: tuple[datetime, str],
    by_aggregate: bool,
    limit: int,
) -> Iterator[SessionSummary]:
    """The summaries of the sessions whose first event lies in ``window`` and before
    ``after``, newest first: the cached ones merged with those projected after the cache's
    mark, summarized live, or all live without a cache."""

    def sizes() -> Iterator[int]:
        return _batch_sizes(by_aggregate, limit)

    if cards is None:
        return _live(reader, bot_id, window, after, sizes, EVERY_SESSION)
    cached = cards.read(reader, bot_id, window, after, sizes())
    if not cards.touched.ids:
        return cached
    fresh = _live(reader, bot_id, window, after, sizes, cards.touched_among())
    return heapq.merge(cached, fresh, key=_order, reverse=True)


def _order(summary: SessionSummary) -> tuple[datetime, str]:
    return summary.first_event_at, summary.session_id


def _batch_sizes(by_aggregate: bool, limit: int) -> Iterator[int]:
    """How many candidates each read takes: a page without filters on aggregates is usually
    filled by the first; then twice as many each time."""
    batch = min(4 * (limit + 1), 2_000) if by_aggregate else limit + 1
    while True:
        yield batch
        batch = min(batch * 2, 10_000)


def _live(
    reader: Reader,
    bot_id: str | None,
    window: tuple[datetime, datetime],
    after: tuple[datetime, str],
    sizes: Callable[[], Iterator[int]],
    among: Among,
) -> Iterator[SessionSummary]:
    """``_in_window``'s summaries made from the live tables, of the sessions ``among`` picks,
    those with turns and those without, found in batches of candidates of both kinds."""
    bound = Generations.of(reader).parameters() | among.parameters
    sql = (_SPOKEN if among.silent is None else _BOTH.replace("{silent}", among.silent)).replace(
        "{among}", among.spoken
    )
    for rows in window_batches(reader, sql, bound, bot_id, window, after, sizes()):
        taken = [r for r in rows if among.taken is None or r[1] in among.taken]
        found = summaries(reader, [str(r[1]) for r in taken if r[2]])
        found += silent_summaries(reader, [str(r[1]) for r in taken if not r[2]])
        inside = (s for s in found if window[0] <= s.first_event_at < window[1])
        yield from sorted((s for s in inside if _order(s) < after), key=_order, reverse=True)


def _page(query: str, found: list[SessionSummary], limit: int) -> SessionPage:
    """The first ``limit`` of ``found``, and a cursor of ``query`` after them if there were
    more."""
    page = found[:limit]
    return SessionPage(
        items=page,
        next_cursor=(
            encode_cursor(query, page[-1].first_event_at, page[-1].session_id)
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
