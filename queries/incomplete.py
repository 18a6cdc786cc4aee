"""Sessions the store does not hold whole, and what is missing from each.

Two things make a session incomplete: a hole in its event numbering (an event the producer
sent never reached the store: lost, or still spooled on the bot's side) and a turn that
started but never stopped. Listed in session-id order, so the listing can be walked with a
cursor while the store grows.
"""

from __future__ import annotations

from queries.models import Completeness, IncompletePage, IncompleteSession
from queries.paging import decode_cursor, encode_cursor, page_size
from queries.reader import Reader

SHOWN = 100
"""Missing seqs and open turn ids listed per session at most."""

_HOLES = """
SELECT session_id
FROM session_events_generations
WHERE generation = {events_generation:UInt32} AND session_id > {after:String}
GROUP BY session_id
HAVING uniqExact(seq) < max(seq) + 1
ORDER BY session_id
LIMIT {batch:UInt32}
SETTINGS optimize_aggregation_in_order = 1"""
_OPEN = """
SELECT session_id
FROM transcripts_generations
WHERE generation = {generation:UInt32} AND session_id > {after:String}
    AND session_id IN (
        SELECT session_id FROM transcripts_generations
        WHERE generation = {generation:UInt32} AND NOT complete AND session_id > {after:String}
    )
GROUP BY session_id, turn_id
HAVING NOT argMax(complete, version)
ORDER BY session_id
LIMIT 1 BY session_id
LIMIT {batch:UInt32}"""
_DETAIL = """
SELECT
    e.session_id, e.bot_id, e.events, e.expected,
    arraySlice(
        arrayFilter(s -> NOT has(e.seqs, s), range(least(e.expected, 1000000))),
        1, {shown:UInt32}
    ),
    o.open_ids
FROM (
    SELECT session_id, any(bot_id) AS bot_id, uniqExact(seq) AS events,
        max(seq) + 1 AS expected, groupUniqArray(seq) AS seqs
    FROM session_events_generations
    WHERE generation = {events_generation:UInt32} AND session_id IN {ids:Array(String)}
    GROUP BY session_id
) AS e
LEFT JOIN (
    SELECT session_id, arraySlice(arraySort(groupArray(turn_id)), 1, {shown:UInt32}) AS open_ids
    FROM (
        SELECT session_id, turn_id FROM transcripts_generations
        WHERE generation = {generation:UInt32} AND session_id IN {ids:Array(String)}
        GROUP BY session_id, turn_id
        HAVING NOT argMax(complete, version)
    )
    GROUP BY session_id
) AS o ON e.session_id = o.session_id
ORDER BY e.session_id"""


def incomplete_sessions(
    reader: Reader, *, cursor: str | None = None, limit: int = 100
) -> IncompletePage:
    limit = page_size(limit)
    (after,) = decode_cursor("incomplete", cursor, (str,)) if cursor else ("",)
    parameters = {
        "generation": reader.generation("transcripts"),
        "events_generation": reader.generation("session_events"),
        "after": after,
        "batch": limit + 1,
    }
    ids = sorted({str(r[0]) for sql in (_HOLES, _OPEN) for r in reader.rows(sql, **parameters)})[
        : limit + 1
    ]
    items = _details(reader, ids[:limit], parameters) if ids else []
    return IncompletePage(
        items=items,
        next_cursor=encode_cursor("incomplete", ids[limit - 1]) if len(ids) > limit else None,
    )


def _details(
    reader: Reader, ids: list[str], parameters: dict[str, object]
) -> list[IncompleteSession]:
    rows = reader.rows(_DETAIL, ids=ids, shown=SHOWN, **parameters)
    items = []
    for session_id, bot_id, events, expected, missing, open_ids in rows:
        items.append(
            IncompleteSession(
                session_id=session_id,
                bot_id=bot_id,
                completeness=Completeness(
                    complete=False,
                    events=events,
                    expected=expected,
                    missing=expected - events,
                    open_turns=len(open_ids),
                ),
                missing_seqs=list(missing),
                open_turn_ids=list(open_ids),
            )
        )
    return items
