"""Which hours of an analytics range are read from the rollups and which are summed from
slices (``queries.metrics.range_hours``): every hour the range touches is read exactly one
way, and only whole hours inside the range that nothing touched come from the rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from analytics.definitions import BUCKETS
from queries.metrics import RangeHours, range_hours

HOUR = timedelta(hours=1)
T0 = datetime(2026, 11, 20, tzinfo=UTC)


def _ways(hours: RangeHours, hour: datetime) -> tuple[bool, bool]:
    """Whether ``hour`` is read from the rollups, and whether it is summed from slices, as
    ``queries.metrics`` asks the engine (its ``_ROLLED`` and its fold's hours)."""
    window = hours.roll_from <= hour < hours.roll_until and hour not in hours.touched
    folded = hours.folds and hours.fold_from <= hour < hours.fold_until and not window
    return hours.rolls and window, folded


@settings(max_examples=400)
@example(since_s=0, length_s=3600, aligned=True, step=HOUR, marked=True, touched={-1})
@given(
    since_s=st.integers(0, 48 * 3600),
    length_s=st.integers(1, 48 * 3600),
    aligned=st.booleans(),
    step=st.sampled_from(list(BUCKETS.values())),
    marked=st.booleans(),
    touched=st.sets(st.integers(-2, 100), max_size=6),
)
def test_every_hour_is_read_once_and_only_untouched_whole_ones_from_rollups(
    since_s: int, length_s: int, aligned: bool, step: timedelta, marked: bool, touched: set[int]
) -> None:
    if aligned:
        since_s, length_s = since_s // 3600 * 3600, max(1, length_s // 3600) * 3600
    since = T0 + timedelta(seconds=since_s)
    until = since + timedelta(seconds=length_s)
    first = since.replace(minute=0, second=0)
    hit = sorted({first + n * HOUR for n in touched if first + n * HOUR < until})
    hours = range_hours(since, until, step, hit if marked else None)
    hour = first
    while hour < until:
        rolled, folded = _ways(hours, hour)
        assert rolled != folded, hour
        if rolled:
            assert since <= hour
            assert hour + HOUR <= until
            assert hour not in hit
            assert marked
            assert step >= HOUR
        hour += HOUR


def test_a_marked_week_by_the_hour_reads_only_rollups() -> None:
    hours = range_hours(T0, T0 + 7 * 24 * HOUR, HOUR, [])
    assert (hours.rolls, hours.folds) == (True, False)


def test_a_touched_hour_and_a_partial_one_are_folded() -> None:
    touched = [T0 + 5 * HOUR]
    hours = range_hours(T0 + timedelta(minutes=30), T0 + 24 * HOUR, HOUR, touched)
    assert (hours.roll_from, hours.roll_until) == (T0 + HOUR, T0 + 24 * HOUR)
    assert (hours.fold_from, hours.fold_until) == (T0, T0 + 6 * HOUR)
    assert [_ways(hours, T0 + n * HOUR) for n in (0, 1, 5)] == [
        (False, True),
        (True, False),
        (False, True),
    ]
