"""The metrics, named, versioned and each defined in one line, as the API returns them beside
their values.

A definition's ``version`` goes up whenever its meaning changes. Metrics are computed at read
time from the stored events' projections, never stored as computed during a call, so a new
version applies to every past call at once, and a dashboard can tell which meaning a figure
had.

Each metric is counted over turns or over sessions (``per``), which decides its bucket: a
turn's bucket is that of its start, a session's that of its first turn (of its first event,
for a session without turns), and a session is counted, with all its turns, when that turn
started in the range asked. So a bucket's counts
and sums add up, over all buckets, to those of the whole range, and a figure does not depend
on the range it was asked in. (Version 1 of the session metrics and of the response latency
saw only the turns in the range: a session that began before it was counted from its turns
in it, and the first assistant turn of the range had no latency. Version 2 of ``sessions``
and ``completeness`` did not count a session without turns, a call nobody spoke in: the
calls that failed before a word was said were the ones missing.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

Unit = Literal["count", "ms", "ratio", "per 100 assistant turns", "per minute"]
Kind = Literal["count", "sum", "distribution", "ratio", "rate"]
Per = Literal["turn", "session"]


@dataclass(frozen=True)
class Metric:
    name: str
    version: int
    unit: Unit
    kind: Kind
    per: Per
    definition: str


LEVELS = (0.5, 0.9, 0.95, 0.99)
"""The percentiles of every distribution: p50, p90, p95, p99."""
RELATIVE_ACCURACY = 0.01
"""A percentile is the value at its rank, estimated within 1% of it (a DDSketch: a count per
range of values 2% wide). Such sketches add up exactly, so a figure is the same whatever
order the calls were projected in and however the buckets were summed (a sample of 8,192
values was exact below that and drew lots above it), and a bucket of all bots merges one
small sketch per hour instead of every bot's values (a week of all bots: 6 ms a
distribution against 55, a timing script on ``bench.query``'s store)."""


def _percentiles(since: int) -> str:
    """What a distribution's percentiles are, said in its definition: they became sketches
    (``RELATIVE_ACCURACY``) at version ``since`` of the metric."""
    return (
        f"Percentiles: the value at rank p·(n-1) rounded down, within {RELATIVE_ACCURACY:.0%} "
        f"(before version {since}: interpolated, from a sample above 8,192 values)."
    )


METRICS = (
    Metric(
        "sessions",
        3,
        "count",
        "count",
        "session",
        "Sessions whose first turn started in the bucket, or, for a session without turns "
        "(a call nobody spoke in), whose first event was in it.",
    ),
    Metric(
        "turns",
        1,
        "count",
        "count",
        "turn",
        "Turns that started in the bucket, per role, each counted once in its latest version.",
    ),
    Metric(
        "response_latency_ms",
        3,
        "ms",
        "distribution",
        "turn",
        "An assistant turn's start minus the stop of the user turn before it, only when that "
        "user turn stopped before it started (a barge-in is not a latency), wherever that "
        f"user turn lies. {_percentiles(3)}",
    ),
    Metric(
        "turn_duration_ms",
        2,
        "ms",
        "distribution",
        "turn",
        f"A stopped turn's stop minus its start, per role. {_percentiles(2)}",
    ),
    Metric(
        "talk_ms",
        1,
        "ms",
        "sum",
        "turn",
        "The durations of the stopped turns, summed per role.",
    ),
    Metric(
        "talk_ratio",
        2,
        "ratio",
        "ratio",
        "turn",
        "Assistant talk time divided by user talk time (null without user talk, and split by "
        "role: version 1 gave 0 for the user's row).",
    ),
    Metric(
        "interruptions",
        1,
        "count",
        "count",
        "turn",
        "Assistant turns cut off by the user.",
    ),
    Metric(
        "interruptions_per_100_assistant_turns",
        1,
        "per 100 assistant turns",
        "rate",
        "turn",
        "Interruptions per 100 assistant turns.",
    ),
    Metric(
        "interruptions_per_call_minute",
        3,
        "per minute",
        "rate",
        "session",
        "Interruptions of the sessions that began in the bucket, over all their turns, per "
        "minute of their call time (call_ms); version 2 took those of the turns started in it.",
    ),
    Metric(
        "user_stop_timeouts",
        1,
        "count",
        "count",
        "turn",
        "User turns closed by the stop timeout rather than by the user's end of speech.",
    ),
    Metric(
        "call_ms",
        2,
        "ms",
        "sum",
        "session",
        "From a session's first turn start to its last turn stop (or start, for a turn never "
        "stopped), summed over sessions.",
    ),
    Metric(
        "overlap_ms",
        3,
        "ms",
        "distribution",
        "session",
        "Per session, the time in which a user turn and an assistant turn both ran: "
        f"the total, and its percentiles over the sessions with turns. {_percentiles(3)}",
    ),
    Metric(
        "silence_ms",
        3,
        "ms",
        "distribution",
        "session",
        "Per session, the time within its call in which no turn ran: the total, and its "
        f"percentiles over the sessions with turns. {_percentiles(3)}",
    ),
    Metric(
        "completeness",
        3,
        "count",
        "count",
        "session",
        "Sessions by state, those without turns included: sealed (ended, held whole), "
        "sealed_with_holes, abandoned (no end, silent for longer than abandoned_after), open.",
    ),
)
"""Every metric the analytics report, in the order the API lists them."""

Bucket = Literal["minute", "hour", "day"]
BUCKETS: dict[Bucket, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
"""Buckets start at whole minutes, hours or days of UTC."""
MAX_BUCKETS = 10_000
"""A range cut into more buckets than this is refused: a week by the minute is 10,080."""

GroupBy = Literal["bot", "role", "language", "framework"]
"""What the figures of a bucket can be split by. A session has no role: split by role, the
figures counted over sessions are null. A session's language is that of its first turn with
one."""
