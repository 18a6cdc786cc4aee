"""The lag counts a fetched batch's events as waiting until the batch is written: the fetches
after it (the pipeline gathers the next batch while one is written) bring newer records, or
none, and said the store was fresher than what readers could see."""

from __future__ import annotations

import time
from typing import Any

import polars as pl
import pytest

from consumers.metrics import ProjectorMetrics
from consumers.projector import Projector
from consumers.steps.write import write
from schemas import Topics


def _ms(seconds_ago: float) -> int:
    return int((time.time() - seconds_ago) * 1000)


def test_a_batch_being_written_keeps_the_lag_of_its_oldest_record() -> None:
    metrics = ProjectorMetrics()
    first, second = _ms(9), _ms(2)
    metrics.fetched(1, first, time.time())
    metrics.fetched(1, second, time.time())
    assert metrics.lag_s == pytest.approx(9, abs=0.5), "the newer batch is not the oldest waiting"
    metrics.fetched(1, None, time.time())
    assert metrics.lag_s == pytest.approx(9, abs=0.5), "an empty fetch: still being written"
    metrics.written(1, first)
    assert metrics.lag_s == pytest.approx(2, abs=0.5)
    metrics.written(1, second)
    assert metrics.lag_s == 0.0


def test_batches_with_the_same_oldest_record_time_are_each_waited_for() -> None:
    metrics = ProjectorMetrics()
    oldest = _ms(4)
    metrics.fetched(1, oldest, time.time())
    metrics.fetched(1, oldest, time.time())
    metrics.written(1, oldest)
    assert metrics.lag_s == pytest.approx(4, abs=0.5)
    metrics.written(1, oldest)
    assert metrics.lag_s == 0.0


def test_the_lag_grows_while_a_batch_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = ProjectorMetrics()
    now = time.time()
    metrics.fetched(1, int((now - 1) * 1000), now)
    monkeypatch.setattr(time, "time", lambda: now + 3)
    assert metrics.lag_s == pytest.approx(4, abs=0.1)


def test_a_generation_written_counts_only_its_own_batches() -> None:
    metrics = ProjectorMetrics()
    oldest = _ms(6)
    metrics.fetched(1, oldest, time.time())
    metrics.fetched(2, _ms(1), time.time())
    metrics.written(2, oldest)
    assert metrics.lag_s == pytest.approx(6, abs=0.5)
    assert metrics.lag_of(2) == pytest.approx(1, abs=0.5)


def test_between_rounds_of_projectors_the_lag_grows_from_what_the_last_left_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cut-over stops one round of projectors before the next fetches: nobody projects
    meanwhile, and the figure taken at the stop stayed as it was."""
    metrics = ProjectorMetrics()
    now = time.time()
    metrics.fetched(1, int((now - 5) * 1000), now)
    metrics.fetched(2, None, now - 1)
    metrics.forget(2)
    assert metrics.lag_s == pytest.approx(5, abs=0.1), "one projector still runs"
    metrics.forget(1)
    monkeypatch.setattr(time, "time", lambda: now + 10)
    assert metrics.lag_s == pytest.approx(15, abs=0.1)
    metrics.fetched(3, None, now + 10)
    assert metrics.lag_s == 0.0


def test_a_caught_up_round_that_stopped_counts_from_when_the_broker_last_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = ProjectorMetrics()
    now = time.time()
    metrics.fetched(1, None, now - 0.5)
    metrics.forget(1)
    monkeypatch.setattr(time, "time", lambda: now + 2)
    assert metrics.lag_s == pytest.approx(2.5, abs=0.1)


def test_a_projector_that_never_fetched_leaves_no_lag() -> None:
    metrics = ProjectorMetrics()
    metrics.forget(1)
    assert metrics.lag_s is None


def test_projectors_that_failed_with_a_batch_unwritten_count_from_its_oldest_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch the store refused ends the round, and the projectors wait to start again: the
    lag fell to the time since the broker last answered, then jumped back at the next fetch."""
    metrics = ProjectorMetrics()
    now = time.time()
    metrics.fetched(1, int((now - 8) * 1000), now)
    metrics.forget(1)
    metrics.stopped(now)
    monkeypatch.setattr(time, "time", lambda: now + 2)
    assert metrics.lag_s == pytest.approx(10, abs=0.1)


def _projector(metrics: ProjectorMetrics, hurry_after_s: float | None = None) -> Projector:
    return Projector(
        bootstrap="127.0.0.1:1",
        topics=Topics(),
        group_id="g",
        store=None,  # type: ignore[arg-type]
        metrics=metrics,
        hurry_after_s=hurry_after_s,
    )


async def test_a_live_projector_hurries_its_writes_once_its_lag_reaches_the_bound() -> None:
    """Written behind reads (nice 19) under reads that kept both cores busy, the store fell
    10-22 s behind; from ``hurry_after_s`` on, batches go at the normal priority."""
    metrics = ProjectorMetrics()
    live = _projector(metrics, hurry_after_s=2.0)
    seen = [live.hurrying]
    metrics.fetched(1, _ms(0.5), time.time())
    seen.append(live.hurrying)
    metrics.fetched(1, _ms(3), time.time())
    seen.append(live.hurrying)
    assert seen == [False, False, True]
    assert not _projector(metrics).hurrying, "a rebuild's lag is the age of the past it replays"


class _Inserts:
    """What ``write`` asks of a store, recorded: the table and whether it hurried."""

    def __init__(self) -> None:
        self.made: list[tuple[str, bool]] = []

    def insert(self, table: str, rows: pl.DataFrame, **options: Any) -> None:
        self.made.append((table, options["hurry"]))


def test_a_batch_asks_before_each_insert_whether_to_hurry() -> None:
    """Decided once per batch, a batch begun just under the bound wrote every table behind
    reads, however long that took."""
    inserts, asked = _Inserts(), iter([False, True])
    rows = {table: pl.DataFrame({"x": [1]}) for table in ("transcripts", "session_events")}
    write(
        inserts,  # type: ignore[arg-type]
        rows,
        {},
        generation=1,
        projections=rows.keys(),
        metrics=ProjectorMetrics(),
        hurry=lambda: next(asked),
    )
    assert inserts.made == [("transcripts", False), ("session_events", True)]
