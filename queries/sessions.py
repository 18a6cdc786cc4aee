"""Sessions: their summaries, one session in full, and the newest-first listing.

A summary is an aggregate over the session's turns (folded to their latest versions) and its
event ledger, computed when asked: an aggregate kept up to date on insert would count every
replayed duplicate. Listing newest first across a million sessions is done in two steps so
that neither reads more than it must:

1. candidates: the sessions with a turn in a time window, from the projection ordered by bot
   and time, newest first by their first turn in the window;
2. summaries of a batch of candidates by session key, with the caller's filters.

A session whose first turn lies before the window is left to the next, older window, so the
listing stays in order of first event. Windows widen (an hour, a day, a week, ...) until the
page is full or the time range is exhausted.

What the producer sent is the highest ``seq`` seen, in the event ledger or among the turns:
the projector writes turns before the ledger, so a session whose ledger has not caught up yet
is not called complete.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from queries.chunks import chunk_index
from queries.errors import BadQueryError, NotFoundError
from queries.models import (
    Completeness,
    RoleFigures,
    SessionDetail,
    SessionFilters,
    SessionPage,
    SessionSummary,
)
from queries.paging import EARLIEST, as_utc, bounded, decode_cursor, encode_cursor, page_size
from queries.reader import Reader
from queries.turns import SUMMARY_FIELDS, latest_turns, transcript

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
CLOCK_SKEW = timedelta(hours=1)
"""With no upper bound, turns up to this far ahead of this machine's clock are listed."""

_SUMMARIES = f"""
SELECT * FROM (
    SELECT
        t.session_id AS session_id, bot_id, framework, first_at, last_at,
        user_turns, assistant_turns, user_talk_ms, assistant_talk_ms,
        interruptions, timeouts, median_latency_ms, languages, open_turns,
        e.events AS events, greatest(e.expected, e.events, t.max_seq + 1) AS expected,
        expected - events AS missing, missing = 0 AND open_turns = 0 AS complete
    FROM (
        SELECT
            session_id,
            any(bot_id) AS bot_id,
            any(framework) AS framework,
            min(started_at) AS first_at,
            greatest(max(started_at), max(coalesce(stopped_at, started_at))) AS last_at,
            countIf(role = 'user') AS user_turns,
            countIf(role = 'assistant') AS assistant_turns,
            sumIf(coalesce(duration_ms, 0), role = 'user') AS user_talk_ms,
            sumIf(coalesce(duration_ms, 0), role = 'assistant') AS assistant_talk_ms,
            countIf(interrupted) AS interruptions,
            countIf(timed_out) AS timeouts,
            medianExact(response_latency_ms) AS median_latency_ms,
            arraySort(groupUniqArray(language)) AS languages,
            countIf(NOT complete) AS open_turns,
            max(seq) AS max_seq
        FROM ({latest_turns(SUMMARY_FIELDS, "session_id IN {ids:Array(String)}")})
        GROUP BY session_id
    ) AS t
    LEFT JOIN (
        SELECT session_id, uniqExact(seq) AS events, max(seq) + 1 AS expected
        FROM session_events_generations
        WHERE generation = {{events_generation:UInt32}} AND session_id IN {{ids:Array(String)}}
        GROUP BY session_id
    ) AS e ON t.session_id = e.session_id
)"""

_FILTERS = {
    "since": "first_at >= {since:DateTime64(6, 'UTC')}",
    "until": "first_at < {until:DateTime64(6, 'UTC')}",
    "has_interruption": "(interruptions > 0) = {has_interruption:Bool}",
    "has_timeout": "(timeouts > 0) = {has_timeout:Bool}",
    "min_turns": "user_turns + assistant_turns >= {min_turns:UInt64}",
    "max_turns": "user_turns + assistant_turns <= {max_turns:UInt64}",
    "language": "has(languages, {language:String})",
    "complete": "complete = {complete:Bool}",
}
_AFTER = "(first_at, session_id) < ({after_at:DateTime64(6, 'UTC')}, {after_id:String})"
_WINDOW = (
    "first_at >= {window_lo:DateTime64(6, 'UTC')} AND first_at < {window_hi:DateTime64(6, 'UTC')}"
)

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


def summaries(
    reader: Reader, session_ids: Sequence[str], where: Sequence[str] = (), **parameters: Any
) -> list[SessionSummary]:
    """Summaries of these sessions that pass ``where`` (fragments of this module), newest
    first."""
    if not session_ids:
        return []
    condition = " AND ".join(where) or "1"
    rows = reader.named(
        f"{_SUMMARIES} WHERE {condition} ORDER BY first_at DESC, session_id DESC",
        generation=reader.generation("transcripts"),
        events_generation=reader.generation("session_events"),
        ids=list(session_ids),
        **parameters,
    )
    return [_summary(row) for row in rows]


def session_detail(reader: Reader, session_id: str) -> SessionDetail:
    found = summaries(reader, [session_id])
    if not found:
        raise NotFoundError(f"no session {session_id!r} in the store")
    return SessionDetail(
        summary=found[0],
        turns=transcript(reader, session_id),
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
    set_filters = {k: v for k, v in filters.model_dump().items() if v is not None}
    where = [_FILTERS[k] for k in set_filters if k in _FILTERS]
    where += [_AFTER, _WINDOW]
    by_aggregate = bool(set(set_filters) - {"bot_id", "since", "until"})
    found: list[SessionSummary] = []
    for window_lo, window_hi in _windows(after_at, filters.since):
        for batch in _candidate_batches(
            reader, filters.bot_id, window_lo, window_hi, (after_at, after_id), by_aggregate, limit
        ):
            found += summaries(
                reader,
                batch,
                where,
                after_at=after_at,
                after_id=after_id,
                window_lo=window_lo,
                window_hi=window_hi,
                **set_filters,
            )
            if len(found) > limit:
                break
        if len(found) > limit:
            break
    page = found[:limit]
    more = len(found) > limit
    return SessionPage(
        items=page,
        next_cursor=(
            encode_cursor("sessions", page[-1].first_event_at, page[-1].session_id)
            if more
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


def _summary(row: Any) -> SessionSummary:
    events = int(row["events"] or 0)
    expected = int(row["expected"] or 0)
    latency = row["median_latency_ms"]
    return SessionSummary(
        session_id=row["session_id"],
        bot_id=row["bot_id"],
        framework=row["framework"],
        first_event_at=as_utc(row["first_at"]),
        last_event_at=as_utc(row["last_at"]),
        turns=RoleFigures(user=row["user_turns"], assistant=row["assistant_turns"]),
        talk_ms=RoleFigures(user=row["user_talk_ms"], assistant=row["assistant_talk_ms"]),
        interruptions=row["interruptions"],
        timeouts=row["timeouts"],
        median_response_latency_ms=None if latency is None or latency != latency else latency,
        languages=list(row["languages"]),
        completeness=Completeness(
            complete=bool(row["complete"]),
            events=events,
            expected=expected,
            missing=expected - events,
            open_turns=row["open_turns"],
        ),
    )
