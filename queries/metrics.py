"""The named metrics of ``analytics.definitions``, per time bucket and group, from the live
tables: a call projected a second ago is counted, and each turn once, in its latest version.

A turn counts in the bucket of its start, with its response latency (taken from the user turn
before it, even one before ``since``); a session counts in the bucket of its first turn (of
its first event, without turns), with its call time, overlap, silence and state from all its
turns, when that turn started in the range. Whole hours come from the hourly rollups
(``queries.rollups``; those of all bots for a read neither of one bot nor split by bot), but
those of sessions projected after the cache's mark; the rest (the
hours a rollup does not hold yet, a range's partial hours, minute buckets, a store without a
mark) is summed from its slices (``queries.facts.slices_in``) by the same SQL, and the two
merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from analytics.definitions import BUCKETS, MAX_BUCKETS, METRICS, Bucket, GroupBy
from consumers.storage.session_facts import quantiles
from queries.analytics import in_range, matching, percentiles
from queries.errors import BadQueryError
from queries.facts import slices_in, touched_hours
from queries.marks import Generations, Touched, mark, touched_since
from queries.models import (
    MetricDefinition,
    Metrics,
    MetricsRow,
    RoleFigures,
    RolePercentiles,
    SessionTimeFigures,
    StateCounts,
)
from queries.paging import as_utc, of_bot
from queries.reader import Reader
from queries.rollups import rolled, states

_HOUR = timedelta(hours=1)
_GROUPS: dict[GroupBy | None, str] = {
    None: "''",
    "bot": "toString(bot_id)",
    "framework": "toString(framework)",
    "language": "toString(language)",
    "role": "toString(role)",
}
_ROLLED = (
    "({hour} >= {{roll_from:DateTime('UTC')}} AND {hour} < {{roll_until:DateTime('UTC')}} "
    "AND NOT has({{touched:Array(DateTime('UTC'))}}, {hour}))"
)
"""SQL of whether the hour ``{hour}`` is read from the rollups."""
_MERGE = quantiles("Merge")
_BUCKET = "toStartOfInterval(hour, toIntervalSecond({bucket_s:UInt32})) AS bucket_start"
_MERGED = {
    "turn_rollups": f"""
SELECT
    {_BUCKET},
    {{group}} AS grp,
    toString(role) AS of_role,
    sum(turns_n),
    sum(timed_n),
    {_MERGE}(durations),
    sum(talk_ms),
    sum(latencies_n),
    {_MERGE}(latencies),
    sum(interruptions),
    sum(timeouts)
FROM {{source}}
GROUP BY bucket_start, grp, of_role""",
    "session_rollups": f"""
SELECT
    {_BUCKET},
    {{group}} AS grp,
    sum(sessions_n),
    sum(spoken_n),
    sum(call_ms_total),
    sum(interruptions_in_sessions),
    sum(overlap_ms_total),
    {_MERGE}(overlaps),
    sum(silence_ms_total),
    {_MERGE}(silences),
    sum(sealed_n),
    sum(holed_n),
    sum(arrayCount(at -> at < {{idle_before:DateTime64(6, 'UTC')}}, unsealed)) AS abandoned,
    sum(length(unsealed)) - abandoned
FROM {{source}}
GROUP BY bucket_start, grp""",
}
"""Per rollup, SQL of its figures per bucket and group, merged from ``{source}``: rollup rows,
rows summed from slices, or both. ``{source}`` may be a rollup table with its ``WHERE``, which
sees this ``SELECT``'s aliases: none may be named as a rollup's column."""


@dataclass(frozen=True)
class RangeHours:
    """Which hours of a range are read from the rollups, and which are summed from slices."""

    roll_from: datetime
    roll_until: datetime
    touched: list[datetime]
    fold_from: datetime
    fold_until: datetime

    @property
    def rolls(self) -> bool:
        return self.roll_from < self.roll_until and not self._all_touched()

    @property
    def folds(self) -> bool:
        return self.fold_from < self.fold_until

    def _all_touched(self) -> bool:
        inside = sum(self.roll_from <= hour < self.roll_until for hour in self.touched)
        return inside * _HOUR >= self.roll_until - self.roll_from

    def parameters(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def range_hours(
    since: datetime, until: datetime, step: timedelta, touched: list[datetime] | None
) -> RangeHours:
    """``touched`` None reads no rollup: the store has no mark, or the buckets are not whole
    hours."""
    first, last = _floor(since), _floor(until)
    if touched is None or step % _HOUR:
        return RangeHours(first, first, [], first, until)
    roll_from = first if first == since else first + _HOUR
    folded = sorted(
        {*touched, *([first] if first < roll_from else []), *([last] if last < until else [])}
    )
    if not folded:
        return RangeHours(roll_from, last, touched, first, first)
    return RangeHours(roll_from, last, touched, folded[0], folded[-1] + _HOUR)


def _floor(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def metrics(
    reader: Reader,
    *,
    since: datetime,
    until: datetime,
    bucket: Bucket = "hour",
    bot_id: str | None = None,
    group_by: GroupBy | None = None,
) -> Metrics:
    """Every metric per bucket of ``[since, until)`` and group; buckets with no turn and no
    session are left out."""
    asked = {"since": as_utc(since), "until": as_utc(until)}  # as ``in_range`` says
    since, until, _ = in_range(since, until, bot_id)
    step = BUCKETS[bucket]
    if (until - since) / step > MAX_BUCKETS:
        wider = "a shorter range" if bucket == "day" else "a wider bucket or a shorter range"
        raise BadQueryError(
            "bucket", f"cuts the range into more than {MAX_BUCKETS} buckets: take {wider}"
        )
    clock = reader.clock()
    generations = Generations.of(reader)
    through = mark(reader, generations)
    touched = Touched([], []) if through is None else touched_since(reader, generations, through)
    parameters = (
        generations.parameters()
        | {
            "since": since,
            "until": until,
            "bot_id": bot_id or "",
            "bucket_s": int(step.total_seconds()),
            "idle_before": clock.now - clock.abandoned_after,
        }
        | touched.parameters()
    )
    hours = range_hours(
        since,
        until,
        step,
        None
        if through is None
        else touched_hours(reader, touched, parameters, bot_id)
        if touched.ids
        else [],
    )
    read = _Read(
        reader,
        hours,
        {
            table: slices_in(bot_id, through, touched, turns=table == "turn_rollups")
            for table in _MERGED
        },
        bot_id,
        group_by,
        parameters | hours.parameters(),
    )
    turns: dict[tuple[datetime, str], dict[str, Sequence[Any]]] = {}
    for at, group, role, *values in read.merged("turn_rollups", "t.", "started_at"):
        turns.setdefault((as_utc(at), group), {})[role] = values
    rows = {key: _turn_figures(by_role) for key, by_role in turns.items()}
    if group_by != "role":
        opened = {
            (as_utc(at), group): _session_figures(values)
            for at, group, *values in read.merged("session_rollups", "", "opened_at")
        }
        rows = {
            key: rows.get(key, _turn_figures({})) | opened.get(key, _session_figures(_NO_SESSION))
            for key in rows.keys() | opened.keys()
        }
    return Metrics(
        **asked,
        bucket=bucket,
        bot_id=bot_id,
        group_by=group_by,
        definitions=[MetricDefinition(**vars(m)) for m in METRICS],
        rows=[
            _row(at, group if group_by else None, figures, by_role=group_by == "role")
            for (at, group), figures in sorted(rows.items())
        ],
    )


@dataclass(frozen=True)
class _Read:
    """One analytics read: its hours, where its slices come from, its bot and grouping, and
    the parameters its SQL binds."""

    reader: Reader
    hours: RangeHours
    slices: dict[str, str]
    """Per rollup table, SQL of the slices its figures are summed from."""
    bot_id: str | None
    group_by: GroupBy | None
    parameters: dict[str, Any]

    def merged(self, table: str, turn: str, started: str) -> Sequence[Sequence[Any]]:
        """The figures of ``table`` per bucket and group: of the rollup rows of the hours
        that have them, and summed from the slices for the others (``turn`` and ``started``
        name the time that puts a row in its hour: ``t.`` and ``started_at``, each turn's
        start, or ``""`` and ``opened_at``, when a slice's session counts)."""
        parts = []
        source = ""
        if self.hours.rolls:
            where = f"{_ROLLED.format(hour='hour')} AND {of_bot(self.bot_id)}"
            all_bots = not self.bot_id and self.group_by != "bot"
            rows, source = rolled(table, where, all_bots=all_bots)
            parts.append(rows)
        if self.hours.folds:
            hour = f"toStartOfHour({turn}{started})"
            picked = f"{matching(turn, self.bot_id, started)} AND NOT {_ROLLED.format(hour=hour)}"
            parts.append(states(table, self.slices[table], picked))
            source = f"({' UNION ALL '.join(parts)})"
        if not parts:
            return []
        sql = _MERGED[table].replace("{group}", _GROUPS[self.group_by])
        return self.reader.rows(sql.replace("{source}", source), **self.parameters)


_NO_ROLE: Sequence[Any] = (0, 0, [], 0, 0, [], 0, 0)
"""A role's turn figures in a bucket where it has no turn (in its group)."""
_NO_SESSION: Sequence[Any] = (0, 0, 0, 0, 0, [], 0, [], *(0 for _ in StateCounts.model_fields))
"""The session figures of a bucket where no session opened (in its group): its turns belong
to sessions counted in an earlier bucket."""


def _turn_figures(by_role: dict[str, Sequence[Any]]) -> dict[str, Any]:
    user_turns, user_timed, user_ms, talk_user, _, _, _, timeouts = by_role.get("user", _NO_ROLE)
    assistant_turns, timed, assistant_ms, talk_assistant, latencies, latency, interruptions, _ = (
        by_role.get("assistant", _NO_ROLE)
    )
    return {
        "turns": RoleFigures(user=user_turns, assistant=assistant_turns),
        "response_latency_ms": percentiles(latency, latencies),
        "turn_duration_ms": RolePercentiles(
            user=percentiles(user_ms, user_timed), assistant=percentiles(assistant_ms, timed)
        ),
        "talk_ms": RoleFigures(user=talk_user, assistant=talk_assistant),
        "interruptions": interruptions,
        "user_stop_timeouts": timeouts,
    }


def _session_figures(values: Sequence[Any]) -> dict[str, Any]:
    sessions, spoken, call, interrupted, overlap, overlaps, silence, silences, *states = values
    return {
        "sessions": sessions,
        "call_ms": call,
        "interruptions_per_call_minute": interrupted / (call / 60_000) if call else None,
        "overlap_ms": SessionTimeFigures(total=overlap, per_session=percentiles(overlaps, spoken)),
        "silence_ms": SessionTimeFigures(total=silence, per_session=percentiles(silences, spoken)),
        "completeness": StateCounts(**dict(zip(StateCounts.model_fields, states, strict=True))),
    }


def _row(at: datetime, group: str | None, figures: dict[str, Any], *, by_role: bool) -> MetricsRow:
    """The row's rates and ratios, from its counts and sums; split by role, a ratio between
    the roles has no meaning."""
    talk: RoleFigures = figures["talk_ms"]
    assistant_turns = figures["turns"].assistant
    interruptions = figures["interruptions"]
    return MetricsRow(
        bucket_start=at,
        group=group,
        talk_ratio=talk.assistant / talk.user if talk.user and not by_role else None,
        interruptions_per_100_assistant_turns=(
            100 * interruptions / assistant_turns if assistant_turns else None
        ),
        **figures,
    )
