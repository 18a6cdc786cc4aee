"""Sessions the store does not hold whole, and what is missing from each.

A session is listed when its event numbering has a hole (an event the producer sent never
reached the store: lost, or still spooled on the bot's side), when it ended or was abandoned
with a turn that started but never stopped (in a call that goes on, a turn is under way, not
missing), when it ended and its chunks are not what its end declared (``queries.sealing``), or
when it never ended and has been silent for longer than the reader's ``abandoned_after``, by
its events and its turns, as its summary tells it. Listed in session-id order, so the listing
can be walked with a cursor while the store grows. A bot filter keeps the sessions whose
first event came from that bot, the bot each item names.

Finding them means reading every session's ledger and chunks: about 16 µs a session, 16 s for
a million, when few have holes. So a page examines the sessions in spans of ``SPAN`` and stops
after ``BUDGET_S`` with what it found, which may be fewer than asked or none, and a cursor from
where it stopped: a caller walks ``next_cursor`` until it is null, each request answered in
about the budget.
"""

from __future__ import annotations

import time

from queries.completeness import Clock, completeness
from queries.models import IncompletePage, IncompleteSession
from queries.paging import as_utc, decode_cursor, encode_cursor, fingerprint, page_size
from queries.reader import Reader
from queries.sealing import (
    DECLARED_EVENTS,
    LEDGER_COLUMNS,
    SEALS_CHUNK_HOLES,
    chunk_figures,
    first_events,
    ledger,
)

SHOWN = 100
"""Missing seqs and open turn ids listed per session at most."""
SPAN = 50_000
"""Sessions examined by one round of the three searches below."""
BUDGET_S = 1.0
"""After this, a page ends with the rounds done so far."""
_IN_SPAN = "session_id > {after:String}{upto}"
_UPTO = " AND session_id <= {upto:String}"
_OF_BOT = f"""session_id IN (
    SELECT session_id FROM ({first_events(_IN_SPAN)}) WHERE first_bot_id = {{bot_id:String}})"""
"""Whether a session of the span is of the bot asked for, inside each search: filtered after
them, a search that stopped at its ``LIMIT`` on other bots' sessions hid the bot's after them."""
_SPAN_END = """
SELECT session_id
FROM session_summaries_generations
WHERE generation = {events_generation:UInt32} AND session_id > {after:String}
ORDER BY session_id
LIMIT 1 OFFSET {span:UInt32}"""

_HOLES = f"""
SELECT session_id
FROM session_events_generations
WHERE generation = {{events_generation:UInt32}} AND {_IN_SPAN} AND {{of_bot}}
GROUP BY session_id
HAVING uniqExact(seq) < greatest(max(seq) + 1, {DECLARED_EVENTS})
    OR ({DECLARED_EVENTS} = 0 AND max(occurred_at) < {{idle_before:DateTime64(6, 'UTC')}})
ORDER BY session_id
LIMIT {{batch:UInt32}}
SETTINGS optimize_aggregation_in_order = 1"""
_OPEN = f"""
SELECT session_id
FROM transcripts_generations
WHERE generation = {{generation:UInt32}} AND {_IN_SPAN} AND {{of_bot}}
    AND session_id IN (
        SELECT session_id FROM session_events_generations
        WHERE generation = {{events_generation:UInt32}} AND {_IN_SPAN}
            AND session_id IN (
                SELECT session_id FROM transcripts_generations
                WHERE generation = {{generation:UInt32}} AND NOT complete AND {_IN_SPAN}
            )
        GROUP BY session_id
        HAVING {DECLARED_EVENTS} > 0 OR max(occurred_at) < {{idle_before:DateTime64(6, 'UTC')}}
    )
GROUP BY session_id, turn_id
HAVING NOT argMax(complete, version)
ORDER BY session_id
LIMIT 1 BY session_id
LIMIT {{batch:UInt32}}"""
_CHUNK_HOLES = f"""
SELECT session_id
FROM session_seals_generations
WHERE generation IN ({{events_generation:UInt32}}, {{chunks_generation:UInt32}})
    AND {_IN_SPAN} AND {{of_bot}}
GROUP BY session_id
HAVING {SEALS_CHUNK_HOLES}
ORDER BY session_id
LIMIT {{batch:UInt32}}"""
_LEDGERS = first_events(
    "session_id IN {ids:Array(String)}",
    *LEDGER_COLUMNS,
    "groupUniqArray(seq) AS seqs",
    f"greatest(last_seq + 1, {DECLARED_EVENTS}) AS expected",
)
_DETAIL = f"""
SELECT
    e.session_id, e.first_bot_id, e.events, e.last_seq, e.last_event_at, e.ends,
    arraySlice(
        arrayFilter(
            s -> NOT has(e.seqs, s),
            range(least(greatest(e.expected, if(o.turns > 0, o.last_turn_seq + 1, 0)), 1000000))
        ),
        1, {{shown:UInt32}}
    ),
    o.open_ids, o.turns, o.last_turn_seq, o.last_turn_at, o.open_turns
FROM ({_LEDGERS}) AS e
LEFT JOIN (
    SELECT
        session_id,
        count() AS turns,
        max(seq) AS last_turn_seq,
        max(last_at) AS last_turn_at,
        countIf(NOT complete) AS open_turns,
        arraySlice(arraySort(groupArrayIf(turn_id, NOT complete)), 1, {{shown:UInt32}}) AS open_ids
    FROM (
        SELECT
            session_id, turn_id,
            argMax(complete, version) AS complete,
            argMax(seq, version) AS seq,
            argMax(ifNull(stopped_at, started_at), version) AS last_at
        FROM transcripts_generations
        WHERE generation = {{generation:UInt32}} AND session_id IN {{ids:Array(String)}}
        GROUP BY session_id, turn_id
    )
    GROUP BY session_id
) AS o ON e.session_id = o.session_id
ORDER BY e.session_id"""
"""Each session's ledger, its missing seqs and its open turns, with what its turns add to its
completeness as a summary takes it (``queries.summary``): their highest seq and latest time,
so that the two tell the same state and the same holes."""


def incomplete_sessions(
    reader: Reader,
    *,
    cursor: str | None = None,
    limit: int = 100,
    bot_id: str | None = None,
    span: int = SPAN,
    budget_s: float = BUDGET_S,
) -> IncompletePage:
    limit = page_size(limit)
    query = fingerprint("incomplete", {"bot_id": bot_id or None})
    (after,) = decode_cursor(query, cursor, (str,)) if cursor else ("",)
    clock = reader.clock()
    parameters = {
        "generation": reader.generation("transcripts"),
        "events_generation": reader.generation("session_events"),
        "chunks_generation": reader.generation("audio_chunks"),
        "batch": limit + 1,
        "idle_before": clock.now - clock.abandoned_after,
    }
    deadline = time.monotonic() + budget_s
    found: list[str] = []
    next_after: str | None
    while True:
        ends = reader.rows(_SPAN_END, after=after, span=span, **parameters)
        upto = str(ends[0][0]) if ends else None
        found += _searched(reader, parameters, after, upto, bot_id)[: limit + 1]
        if len(found) > limit:
            ids, next_after = found[:limit], found[limit - 1]
            break
        if upto is None or time.monotonic() > deadline:
            ids, next_after = found, upto
            break
        after = upto
    return IncompletePage(
        items=_details(reader, ids, parameters, clock) if ids else [],
        next_cursor=None if next_after is None else encode_cursor(query, next_after),
    )


def _searched(
    reader: Reader,
    parameters: dict[str, object],
    after: str,
    upto: str | None,
    bot_id: str | None,
) -> list[str]:
    """The incomplete sessions after ``after`` up to ``upto`` (None: the last), of ``bot_id``
    (None or empty: of any bot, as ``queries.paging.of_bot`` takes it), in order."""
    bounded = {"after": after, **({"upto": upto} if upto is not None else {})}
    of_bot = {"bot_id": bot_id} if bot_id else {}
    found = {
        str(row[0])
        for sql in (_HOLES, _OPEN, _CHUNK_HOLES)
        for row in reader.rows(
            sql.replace("{of_bot}", _OF_BOT if bot_id else "1").replace(
                "{upto}", _UPTO if upto is not None else ""
            ),
            **parameters,
            **bounded,
            **of_bot,
        )
    }
    return sorted(found)


def _details(
    reader: Reader, ids: list[str], parameters: dict[str, object], clock: Clock
) -> list[IncompleteSession]:
    """The sessions found, as their summaries tell them: those that the turns show to be
    neither incomplete nor abandoned (a turn later than the ledger's last event, say) are left
    out, as the searches look at the ledger alone. For the same reason a session whose only
    hole is a turn numbered past its ledger, not yet silent, is not found: the projector writes
    the ledger right after the turns, so this lasts a batch, unless the two projections show
    generations of different events."""
    chunks = chunk_figures(reader, ids)
    found = []
    for row in reader.rows(_DETAIL, ids=ids, shown=SHOWN, **parameters):
        session_id, bot_id, events, last_seq, last_at, ends, missing, open_ids = row[:8]
        turns, last_turn_seq, last_turn_at, open_turns = row[8:]
        told = completeness(
            ledger((events, last_seq, last_at, ends), chunks.get(session_id, ())),
            clock,
            last_turn_seq=last_turn_seq if turns else -1,
            open_turns=open_turns or 0,  # NULL with ``join_use_nulls`` on: no turns
            last_turn_at=as_utc(last_turn_at) if turns else None,
        )
        if told.complete and told.state != "abandoned":
            continue
        found.append(
            IncompleteSession(
                session_id=session_id,
                bot_id=bot_id,
                completeness=told,
                missing_seqs=list(missing),
                open_turn_ids=list(open_ids),
            )
        )
    return found
