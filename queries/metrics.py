"""The named metrics of ``analytics.definitions``, per time bucket and group, from the live
tables: a call projected a second ago is counted, and each turn once, in its latest version.

Two queries over the turns that started in the range, each turn in its latest version with
its response latency (``queries.turns.session_turns``): one counts turns into the bucket of
their start; the other folds each session's array of turns into its call time, overlap and
silence (``analytics.session_time``, computed here in the engine) and its completeness (the
rules of ``queries.completeness`` over the session's ledger and seals), into the bucket of
its first turn. Both see only the turns in the range: a session that began before ``since``
is counted from its turns after it, and the user turn before the range's first assistant
turn is not seen, so that turn has no latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from analytics.definitions import BUCKETS, MAX_BUCKETS, METRICS, Bucket, GroupBy
from consumers.storage.session_facts import FACT_TURN
from queries.analytics import QUANTILES, in_range, percentiles
from queries.errors import BadQueryError
from queries.facts import Generations, mark, projected_after, sessions_in
from queries.models import (
    MetricDefinition,
    Metrics,
    MetricsRow,
    RoleFigures,
    RolePercentiles,
    SessionTimeFigures,
    StateCounts,
)
from queries.paging import as_utc
from queries.reader import Reader
from queries.turns import latencies_along

QUANTILES_IF = QUANTILES.replace("quantiles", "quantilesIf")
_BUCKET = "toStartOfInterval({at}, toIntervalSecond({{bucket_s:UInt32}}))"
_TURN_GROUPS: dict[GroupBy | None, str] = {
    None: "''",
    "bot": "toString(bot_id)",
    "framework": "toString(framework)",
    "language": "ifNull(toString(language), '')",
    "role": "toString(role)",
}
_TURN_NAMES = tuple(name for name, _ in FACT_TURN)


def _of(turn: str, name: str) -> str:
    """SQL of the field ``name`` of ``turn``, a turn of ``queries.facts.sessions_in``."""
    return f"{turn}.{name}"


_SESSION_GROUPS: dict[GroupBy | None, str] = {
    None: "''",
    "bot": f"toString({_of('turns[1]', 'bot_id')})",
    "framework": f"toString({_of('turns[1]', 'framework')})",
    "language": "ifNull(toString(arrayFirst(x -> x IS NOT NULL, "
    f"arrayMap(t -> {_of('t', 'language')}, turns))), '')",
}
_MS = "toUnixTimestamp64Milli({})"
_END = f"coalesce({_of('t', 'stopped_at')}, {_of('t', 'started_at')})"
_SPAN = (
    f"({_MS.format(_of('t', 'started_at'))}, "
    f"{_MS.format('assumeNotNull(' + _of('t', 'stopped_at') + ')')})"
)
_COVERED = (
    "arrayFold((acc, x) -> (greatest(acc.1, x.2), acc.2 + greatest(x.2 - greatest(x.1, acc.1), "
    f"0)), arrayMap(t -> {_SPAN}, arrayFilter(t -> {_of('t', 'stopped_at')} IS NOT NULL"
    "{role}, turns)), (toInt64(-9223372036854775807), toInt64(0))).2"
)
"""The length of the union of a session's stopped turns (of one role), as
``analytics.session_time.covered_ms`` takes it: spans in start order, each adding what lies
beyond the furthest stop so far."""
_OF_ROLE = f" AND {_of('t', 'role')} = '{{}}'"

_TURNS = f"""
SELECT
    {_BUCKET.format(at="started_at")} AS bucket_start,
    {{group}} AS grp,
    countIf(role = 'user'),
    countIf(role = 'assistant'),
    countIf(response_latency_ms IS NOT NULL),
    {QUANTILES_IF}(
        assumeNotNull(response_latency_ms), response_latency_ms IS NOT NULL),
    countIf(role = 'user' AND duration_ms IS NOT NULL),
    {QUANTILES_IF}(
        assumeNotNull(duration_ms), role = 'user' AND duration_ms IS NOT NULL),
    countIf(role = 'assistant' AND duration_ms IS NOT NULL),
    {QUANTILES_IF}(
        assumeNotNull(duration_ms), role = 'assistant' AND duration_ms IS NOT NULL),
    toInt64(coalesce(sumIf(duration_ms, role = 'user'), 0)),
    toInt64(coalesce(sumIf(duration_ms, role = 'assistant'), 0)),
    countIf(role = 'assistant' AND interrupted),
    countIf(role = 'user' AND timed_out)
FROM ({{turns}})
GROUP BY bucket_start, grp
ORDER BY bucket_start, grp"""

_TURN_ROWS = f"""
SELECT
    session_id,
    {", ".join(f"turn.{name} AS {name}" for name in _TURN_NAMES)},
    response_latency_ms
FROM (
    SELECT
        session_id,
        turns,
        {latencies_along("turns", {name: name for name in _TURN_NAMES})} AS response_latencies
    FROM ({{sessions}})
)
ARRAY JOIN turns AS turn, response_latencies AS response_latency_ms"""
"""The turns of the sessions, one row each, with their response latencies."""

_SESSION_FOLD = f"""
SELECT
    session_id,
    {_BUCKET.format(at=_of("turns[1]", "started_at"))} AS bucket_start,
    {{group}} AS grp,
    arrayMax(t -> {_MS.format(_END)}, turns)
        - {_MS.format(_of("turns[1]", "started_at"))} AS call_ms,
    {_COVERED.format(role=_OF_ROLE.format("user"))} AS user_ms,
    {_COVERED.format(role=_OF_ROLE.format("assistant"))} AS assistant_ms,
    {_COVERED.format(role="")} AS both_ms,
    toInt64(arrayMax(t -> {_of("t", "seq")}, turns)) AS last_turn_seq,
    arrayCount(t -> NOT {_of("t", "complete")}, turns) AS open_turns,
    arrayMax(t -> {_END}, turns) AS last_turn_at,
    events,
    last_seq,
    session_ends,
    chunk_holes,
    last_event_at
FROM ({{sessions}})"""

_STATE = """multiIf(
    notEmpty(session_ends),
        if(greatest(coalesce(last_seq, -1), last_turn_seq) + 1 > coalesce(events, 0)
           OR arrayReverseSort(e -> e.1, session_ends)[1].2 > coalesce(events, 0)
           OR open_turns > 0 OR coalesce(chunk_holes, false), 'sealed_with_holes', 'sealed'),
    greatest(last_turn_at, coalesce(last_event_at, last_turn_at))
        < {idle_before:DateTime64(6, 'UTC')}, 'abandoned',
    'open')"""
"""A session's state by the rules of ``queries.completeness``: ended with every declared and
numbered event stored, no turn open and no chunk hole is sealed; no end and silent for longer
than ``abandoned_after`` is abandoned."""
_SESSIONS = f"""
SELECT
    bucket_start,
    grp,
    count(),
    sum(call_ms),
    sum(overlap_ms),
    {QUANTILES}(overlap_ms),
    sum(silence_ms),
    {QUANTILES}(silence_ms),
    countIf(state = 'sealed'),
    countIf(state = 'sealed_with_holes'),
    countIf(state = 'abandoned'),
    countIf(state = 'open')
FROM (
    SELECT
        bucket_start,
        grp,
        call_ms,
        user_ms + assistant_ms - both_ms AS overlap_ms,
        call_ms - both_ms AS silence_ms,
        {_STATE} AS state
    FROM ({_SESSION_FOLD})
)
GROUP BY bucket_start, grp"""


def metrics(
    reader: Reader,
    *,
    since: datetime,
    until: datetime,
    bucket: Bucket = "hour",
    bot_id: str | None = None,
    group_by: GroupBy | None = None,
) -> Metrics:
    """Every metric per bucket of ``[since, until)`` and group; buckets without turns are
    left out."""
    since, until, _ = in_range(since, until, bot_id)
    step = BUCKETS[bucket]
    if (until - since) / step > MAX_BUCKETS:
        raise BadQueryError(
            "bucket", f"cuts the range into more than {MAX_BUCKETS} buckets: take a wider one"
        )
    clock = reader.clock()
    generations = Generations.of(reader)
    through = mark(reader, generations)
    touched = through is not None and projected_after(reader, generations, through)
    parameters = generations.parameters() | {
        "since": since,
        "until": until,
        "bot_id": bot_id or "",
        "bucket_s": int(step.total_seconds()),
        "idle_before": clock.now - clock.abandoned_after,
        "after": through,
    }
    sessions = sessions_in(bot_id, through, touched)
    turns = _TURN_ROWS.replace("{sessions}", sessions)
    rows = {
        (as_utc(at), group): _turn_figures(values)
        for at, group, *values in reader.rows(
            _TURNS.replace("{group}", _TURN_GROUPS[group_by]).replace("{turns}", turns),
            **parameters,
        )
    }
    if group_by != "role":
        sql = _SESSIONS.replace("{group}", _SESSION_GROUPS[group_by])
        for at, group, *values in reader.rows(sql.replace("{sessions}", sessions), **parameters):
            key = (as_utc(at), group)
            rows[key] = rows.get(key, _NO_TURNS) | _session_figures(values)
    return Metrics(
        since=since,
        until=until,
        bucket=bucket,
        bot_id=bot_id,
        group_by=group_by,
        definitions=[MetricDefinition(**vars(m)) for m in METRICS],
        rows=[
            _row(at, group if group_by else None, figures)
            for (at, group), figures in sorted(rows.items())
        ],
    )


def _turn_figures(values: Sequence[Any]) -> dict[str, Any]:
    user, assistant, latencies, latency, timed_user, user_ms, timed_assistant, assistant_ms = (
        values[:8]
    )
    talk_user, talk_assistant, interruptions, timeouts = values[8:]
    return {
        "turns": RoleFigures(user=user, assistant=assistant),
        "response_latency_ms": percentiles(latency, latencies),
        "turn_duration_ms": RolePercentiles(
            user=percentiles(user_ms, timed_user),
            assistant=percentiles(assistant_ms, timed_assistant),
        ),
        "talk_ms": RoleFigures(user=talk_user, assistant=talk_assistant),
        "interruptions": interruptions,
        "user_stop_timeouts": timeouts,
    }


_NO_TURNS = _turn_figures([0, 0, 0, [], 0, [], 0, [], 0, 0, 0, 0])
"""A bucket's turn figures when none of its turns is in its group (a session's language may
be that of a later turn)."""


def _session_figures(values: Sequence[Any]) -> dict[str, Any]:
    sessions, call, overlap, overlaps, silence, silences, *states = values
    return {
        "sessions": sessions,
        "call_ms": call,
        "overlap_ms": SessionTimeFigures(
            total=overlap, per_session=percentiles(overlaps, sessions)
        ),
        "silence_ms": SessionTimeFigures(
            total=silence, per_session=percentiles(silences, sessions)
        ),
        "completeness": StateCounts(**dict(zip(StateCounts.model_fields, states, strict=True))),
    }


def _row(at: datetime, group: str | None, figures: dict[str, Any]) -> MetricsRow:
    """The row's rates and ratios, from its counts and sums."""
    talk: RoleFigures = figures["talk_ms"]
    assistant_turns = figures["turns"].assistant
    call = figures.get("call_ms")
    interruptions = figures["interruptions"]
    return MetricsRow(
        bucket_start=at,
        group=group,
        talk_ratio=talk.assistant / talk.user if talk.user else None,
        interruptions_per_100_assistant_turns=(
            100 * interruptions / assistant_turns if assistant_turns else None
        ),
        interruptions_per_call_minute=interruptions / (call / 60_000) if call else None,
        **figures,
    )
