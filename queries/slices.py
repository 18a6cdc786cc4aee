"""Sessions as the analytics read them, in slices (``consumers.storage.session_facts``): each
slice the turns of one session that started in one hour, of one bot, in their latest versions
with their response latencies, and the session's figures. Folded here from the live tables,
by the rules of ``analytics.session_time`` and ``queries.completeness`` computed in the engine;
``queries.facts`` caches the slices and ``queries.rollups`` sums them.

Every slice comes as ``hour``, ``bot_id``, ``session_id``, ``turns`` and the
``SESSION_FIGURES`` columns, whichever way it was read; the turn figures read ``turns`` alone
(``live_turns``).
"""

from __future__ import annotations

from consumers.storage.session_facts import FACT_TURN, SESSION_FIGURES, SLICE_TURN_TYPE
from queries.sealing import SEALS_CHUNK_HOLES, SEALS_ENDS, first_events
from queries.turns import SUMMARY_FIELDS, session_turns, turn_field

SLICE_VALUES = ("turns", *(name for name, _ in SESSION_FIGURES))
"""What a slice holds beyond its key (``hour``, ``bot_id``, ``session_id``)."""
SLICE_COLUMNS = ", ".join(("hour", "bot_id", "session_id", *SLICE_VALUES))

_MS = "toUnixTimestamp64Milli({})"
_END = "coalesce(t.stopped_at, t.started_at)"
_COVERED = (
    "arrayFold((acc, x) -> (greatest(acc.1, x.2), acc.2 + greatest(x.2 - greatest(x.1, acc.1), "
    f"0)), arrayMap(t -> ({_MS.format('t.started_at')}, "
    f"{_MS.format('assumeNotNull(t.stopped_at)')}), arrayFilter(t -> t.stopped_at IS NOT NULL"
    "{role}, turns)), (toInt64(-9223372036854775807), toInt64(0))).2"
)
"""The length of the union of a session's stopped turns (of one role), as
``analytics.session_time.covered_ms`` takes it: spans in start order, each adding what lies
beyond the furthest stop so far."""
_OF_ROLE = " AND t.role = '{}'"
_ENDED = """CAST(multiIf(
    empty(session_ends), NULL,
    greatest(coalesce(last_seq, -1), if(empty(turns), -1, toInt64(arrayMax(t -> t.seq, turns)))) + 1
        > coalesce(events, 0)
        OR arrayReverseSort(e -> e.1, session_ends)[1].2 > coalesce(events, 0)
        OR arrayExists(t -> NOT t.complete, turns)
        OR coalesce(chunk_holes, false), 'sealed_with_holes',
    'sealed') AS {kind})"""
"""How a session ended, by the rules of ``queries.completeness``: with every declared and
numbered event stored, no turn open and no chunk hole it is sealed; NULL without an end."""

_FIGURES = f"""
SELECT
    session_id,
    turns,
    ifNull(toString(arrayFirst(x -> x IS NOT NULL, arrayMap(t -> t.language, turns))), '')
        AS session_language,
    arrayMax(t -> {_MS.format(_END)}, turns) - {_MS.format("turns[1].started_at")} AS call_ms,
    {_COVERED.format(role="")} AS both_ms,
    {_COVERED.format(role=_OF_ROLE.format("user"))}
        + {_COVERED.format(role=_OF_ROLE.format("assistant"))} - both_ms AS overlap_ms,
    call_ms - both_ms AS silence_ms,
    {_ENDED.replace("{kind}", dict(SESSION_FIGURES)["ended"])} AS ended,
    greatest(arrayMax(t -> {_END}, turns), coalesce(last_event_at, opened_at)) AS last_active_at,
    opened_at,
    opened_by,
    arrayCount(t -> t.interrupted, turns) AS session_interruptions
FROM ({{sessions}})"""
"""Each session's figures from all its turns; those of a session without turns are 0, its
language '', and its state that of its events."""

_SLICED = f"""
SELECT {SLICE_COLUMNS}
FROM (
    SELECT
        slice.1 AS hour,
        slice.2 AS bot_id,
        session_id,
        arrayFilter(t -> (toStartOfHour(t.started_at), t.bot_id) = slice, whole) AS turns,
        slice = slices[1] AS opens,
        session_language, call_ms, overlap_ms, silence_ms, ended, last_active_at, opened_at,
        session_interruptions
    FROM (
        SELECT *, turns AS whole, if(empty(turns), [(toStartOfHour(opened_at), opened_by)],
            arrayDistinct(arrayMap(t -> (toStartOfHour(t.started_at), t.bot_id), turns)))
            AS slices
        FROM ({_FIGURES})
    )
    ARRAY JOIN slices AS slice
)"""
"""Each session cut into its slices, in the order of their first turns: the first opens. A
session without turns is one slice, in the hour of its first event."""


def live_slices(where: str, silent: str | None) -> str:
    """SQL of the slices of the sessions ``where`` picks (a fragment over
    ``transcripts_generations``, whose sessions are folded whole), and of the sessions that
    ``silent`` says have no turns (SQL over ``session_id``, as ``silent_sessions`` makes it;
    None: there are none), from the live tables."""
    return _SLICED.replace("{sessions}", _live_sessions(where, silent))


def live_turns(where: str) -> str:
    """SQL of the turns of the sessions ``where`` picks, as ``live_slices`` would slice them
    but one row per session (``turns``): all that the turn figures read. It leaves out what a
    slice carries of its session (its ledger and seals, joined, and the figures made from
    them), which took four fifths of a fold's time."""
    return f"SELECT turns FROM ({_live_turns(_whole_sessions(where))})"


def _whole_sessions(where: str) -> str:
    """SQL of whether a row's session has a turn that ``where`` picks."""
    return (
        "session_id IN (SELECT session_id FROM transcripts_generations "
        f"WHERE generation = {{generation:UInt32}} AND {where})"
    )


def _live_turns(in_where: str) -> str:
    """SQL of the sessions ``in_where`` picks: ``session_id`` and its ``turns`` (in speaking
    order, each with its latency) as a slice holds them."""
    picked = ", ".join(f"t.{turn_field(SUMMARY_FIELDS, name)}" for name, _ in FACT_TURN)
    return f"""
SELECT
    session_id,
    arrayMap((t, latency) -> CAST(({picked}, latency) AS {SLICE_TURN_TYPE}),
        turns, response_latencies) AS turns
FROM ({session_turns(SUMMARY_FIELDS, in_where)})"""


def _opened(where: str, silent: str | None) -> str:
    """SQL of the sessions ``where`` and ``silent`` pick, as ``_live_sessions`` takes them:
    ``session_id``, ``turns``, and when the session counts and of which bot (``opened_at``,
    ``opened_by``)."""
    spoken = f"""
SELECT session_id, turns, turns[1].started_at AS opened_at, turns[1].bot_id AS opened_by
FROM ({_live_turns(where)})"""
    if silent is None:
        return spoken
    return f"""{spoken}
UNION ALL
SELECT
    session_id,
    CAST([] AS Array({SLICE_TURN_TYPE})) AS turns,
    first_event_at AS opened_at,
    first_bot_id AS opened_by
FROM ({first_events(silent)})"""


def _live_sessions(where: str, silent: str | None) -> str:
    """SQL of the sessions ``where`` and ``silent`` pick (see ``live_slices``): ``session_id``,
    ``turns`` (in speaking order, each with its latency), ``opened_at``, ``opened_by`` and
    what its completeness needs."""
    in_where = _whole_sessions(where)
    both = in_where if silent is None else f"(({in_where}) OR ({silent}))"
    return f"""
SELECT
    st.session_id AS session_id,
    st.turns AS turns,
    st.opened_at AS opened_at,
    st.opened_by AS opened_by,
    l.events AS events,
    l.last_seq AS last_seq,
    s.session_ends AS session_ends,
    s.chunk_holes AS chunk_holes,
    s.last_event_at AS last_event_at
FROM ({_opened(in_where, silent)}) AS st
LEFT JOIN (
    SELECT session_id, uniqExactMerge(seqs) AS events, toInt64(max(last_seq)) AS last_seq
    FROM session_summaries_generations
    WHERE generation = {{events_generation:UInt32}} AND {both}
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
        AND {both}
    GROUP BY session_id
) AS s ON st.session_id = s.session_id
SETTINGS join_use_nulls = 1"""
