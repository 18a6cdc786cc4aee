"""The projector's lag while the broker does not answer: it grows with the silence instead of
reading as "caught up" from the empty fetches."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import TopicPartition
from structlog.testing import capture_logs

from consumers import broker_silence
from consumers.broker_silence import BrokerSilence
from consumers.metrics import BLIND_AFTER_S, ProjectorMetrics
from consumers.projector import Projector
from schemas import Topics
from service.routes.health import _falling_behind
from service.state import StoreState

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


def test_an_empty_fetch_is_caught_up_while_the_broker_answers() -> None:
    metrics = ProjectorMetrics()
    metrics.fetched(1, None, time.time() - 0.4)
    assert metrics.lag_s == 0.0
    metrics.fetched(1, None)
    assert metrics.lag_s == 0.0


def test_an_empty_fetch_after_a_silence_reports_the_silence() -> None:
    metrics = ProjectorMetrics()
    metrics.fetched(1, None, time.time() - BLIND_AFTER_S - 7)
    assert metrics.lag_s == pytest.approx(BLIND_AFTER_S + 7, abs=1)
    assert metrics.registry.get_sample_value("tstore_projector_lag_seconds") == pytest.approx(
        BLIND_AFTER_S + 7, abs=1
    )


def test_fetched_records_give_the_lag_whatever_the_silence() -> None:
    metrics = ProjectorMetrics()
    metrics.fetched(1, int((time.time() - 3) * 1000), time.time() - 60)
    assert metrics.lag_s == pytest.approx(3, abs=1)


def test_stopped_projectors_report_the_time_since_the_broker_last_answered() -> None:
    metrics = ProjectorMetrics()
    metrics.fetched(1, None, time.time() - 2)
    metrics.stopped(time.time() - 60)
    metrics.stopped(time.time())  # failing again does not restart the count
    assert metrics.lag_s == pytest.approx(2, abs=1)
    assert metrics.registry.get_sample_value("tstore_projector_lag_seconds") == pytest.approx(
        2, abs=1
    )
    metrics.fetched(1, None, time.time())
    assert metrics.lag_s == 0.0


def test_projectors_that_never_reached_the_broker_report_the_time_since_they_first_tried() -> None:
    metrics = ProjectorMetrics()
    assert metrics.lag_s is None
    metrics.stopped(time.time() - 30)
    assert metrics.lag_s == pytest.approx(30, abs=1)


def test_the_broker_is_unheard_when_the_last_fetch_found_it_silent_for_the_blind_time() -> None:
    metrics = ProjectorMetrics()
    assert (metrics.unheard_s, metrics.stopped_s) == (None, None), "never started"
    metrics.fetched(1, None, time.time() - BLIND_AFTER_S + 2)
    assert metrics.unheard_s is None
    metrics.fetched(1, None, time.time() - BLIND_AFTER_S - 7)
    assert metrics.unheard_s == pytest.approx(BLIND_AFTER_S + 7, abs=1)
    metrics.fetched(1, int(time.time() * 1000), time.time() - 60)
    assert metrics.unheard_s is None, "records in hand are an answer"
    metrics.fetched(1, None, time.time())
    assert metrics.unheard_s is None


def test_stopped_projectors_are_told_once_stopped_for_the_blind_time() -> None:
    metrics = ProjectorMetrics()
    metrics.fetched(1, None, time.time())
    metrics.stopped(time.time())
    assert metrics.stopped_s is None, "stopped a moment ago"
    never = ProjectorMetrics()
    never.stopped(time.time() - 40)
    assert never.stopped_s == pytest.approx(40, abs=1), "never reached the broker"
    never.fetched(1, None, time.time())
    assert never.stopped_s is None


def test_projectors_that_have_not_fetched_for_the_blind_time_report_the_silence_since(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's commit in flight when the broker went away waits for it: no fetch comes back
    meanwhile, and the last one said the store was current."""
    metrics = ProjectorMetrics()
    heard = time.time()
    metrics.fetched(1, None, heard)
    later = heard + BLIND_AFTER_S + 7
    monkeypatch.setattr(time, "time", lambda: later)
    assert metrics.lag_s == pytest.approx(BLIND_AFTER_S + 7, abs=1)
    assert metrics.unfetched_s == pytest.approx(BLIND_AFTER_S + 7, abs=1)
    assert metrics.registry.get_sample_value("tstore_projector_lag_seconds") == metrics.lag_s
    assert _falling_behind(StoreState(projecting=True, metrics=metrics)) == (
        f"the projectors have not fetched from Kafka for {BLIND_AFTER_S + 7:.0f} s: a write to "
        "the store or a commit to Kafka waits; the store falls behind meanwhile"
    )
    metrics.fetched(1, None, later)
    assert (metrics.lag_s, metrics.unfetched_s) == (0.0, None)
    metrics.stepped(1)
    monkeypatch.setattr(time, "time", lambda: later + BLIND_AFTER_S + 1)
    assert (metrics.lag_s, metrics.unfetched_s) == (0.0, None), "between steps nothing waits"
    metrics.stopped(later)
    monkeypatch.setattr(time, "time", lambda: later + BLIND_AFTER_S + 1)
    assert metrics.unfetched_s is None, "stopped projectors are told as stopped"


class _Consumer:
    """What ``BrokerSilence.fetched`` asks of its consumer."""

    def __init__(self, polls: dict[TopicPartition, int | None], paused: set[TopicPartition]):
        self.polls, self._paused = polls, paused

    def assignment(self) -> set[TopicPartition]:
        return set(self.polls)

    def paused(self) -> set[TopicPartition]:
        return self._paused

    def last_poll_timestamp(self, tp: TopicPartition) -> int | None:
        return self.polls[tp]


def _projector(polls: dict[TopicPartition, int | None], paused: set[TopicPartition]) -> Any:
    projector = Projector(bootstrap="127.0.0.1:1", topics=Topics(), group_id="g", store=None)  # type: ignore[arg-type]
    projector._consumer = _Consumer(polls, paused)
    return projector


def _silence() -> BrokerSilence:
    silence = BrokerSilence(generation=1)
    silence.heard_s = time.time() - 100  # started long ago
    return silence


def _heard(silence: BrokerSilence, consumer: _Consumer, fetched_any: bool = False) -> float:
    heard = silence.fetched(consumer, fetched_any)
    assert heard is not None
    return heard


def _ms(seconds_ago: float) -> int:
    return int((time.time() - seconds_ago) * 1000)


async def test_the_broker_was_last_heard_when_it_last_answered_every_partition() -> None:
    silence, consumer = _silence(), _Consumer({A: _ms(20), B: _ms(30)}, set())
    with capture_logs() as logged:
        assert time.time() - _heard(silence, consumer) == pytest.approx(30, abs=1)
        _heard(silence, consumer)
        consumer.polls = {A: _ms(0.1), B: _ms(0.2)}
        assert time.time() - _heard(silence, consumer) < 1
        _heard(silence, consumer)
    assert [(e["event"], e["log_level"]) for e in logged] == [
        ("kafka_unreachable", "warning"),
        ("kafka_reachable", "info"),
    ]
    assert logged[1]["silent_for_s"] == pytest.approx(30, abs=1)


async def test_a_commit_that_waits_is_silence_told_over_by_its_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A commit waiting on a broker that went away holds the pipeline: no fetch tells."""
    monkeypatch.setattr(broker_silence, "BLIND_AFTER_S", 0.2)
    silence = _silence()
    with capture_logs() as logged:
        assert await silence.waiting(asyncio.sleep(0, "quick"), "a commit") == "quick"
        await asyncio.sleep(0.4)  # past when a timer left running would have gone off
        assert logged == []
        assert await silence.waiting(asyncio.sleep(0.6, "slow"), "a commit") == "slow"
    assert [e["event"] for e in logged] == ["kafka_unreachable", "kafka_reachable"]
    assert logged[0]["detail"].startswith("a commit waits for the broker")
    assert logged[1]["silent_for_s"] == pytest.approx(0.6, abs=0.3)


async def test_paused_partitions_and_no_assignment_are_not_silence() -> None:
    assert time.time() - _heard(_silence(), _Consumer({A: _ms(0.1), B: _ms(60)}, {B})) < 1
    assert time.time() - _heard(_silence(), _Consumer({}, set())) < 1


async def test_a_partition_never_fetched_leaves_the_last_answer() -> None:
    silence = _silence()
    assert time.time() - _heard(silence, _Consumer({A: _ms(0.1), B: None}, set())) == (
        pytest.approx(100, abs=1)
    )


async def test_reaching_the_end_of_the_topics_is_logged_once_until_the_projector_falls_behind() -> (
    None
):
    projector = _projector({A: _ms(0.1)}, set())
    with capture_logs() as logged:
        for oldest_s_ago in (None, None, 2.0, None, BLIND_AFTER_S + 3, None, None):
            oldest = None if oldest_s_ago is None else _ms(oldest_s_ago)
            projector.metrics.fetched(projector.generation, oldest, time.time())
            projector._note_progress(oldest is not None)
            if oldest is not None:  # written before the next fetch that brings nothing
                projector.metrics.written(projector.generation, oldest)
    assert [e["event"] for e in logged] == ["caught_up", "caught_up"]


async def test_records_in_hand_are_an_answer_however_long_ago_the_last_fetch() -> None:
    """aiokafka fetches no partition whose fetched records wait to be taken: a projector slow
    to write sees old poll times from a broker that answers."""
    with capture_logs() as logged:
        assert time.time() - _heard(_silence(), _Consumer({A: _ms(20)}, set()), True) < 1
    assert logged == []


def test_the_offset_lag_lists_the_partitions_held_and_only_those() -> None:
    metrics = ProjectorMetrics()
    metrics.partition_lag(1, A, 10, 4)
    metrics.held_partitions(1, {B: (0, 0)})  # a rebalance took A; B never had a record

    def listed() -> dict[str, float]:
        return {
            sample.labels["partition"]: sample.value
            for family in metrics.registry.collect()
            if family.name == "tstore_projector_lag_offsets"
            for sample in family.samples
        }

    assert listed() == {"1": 0.0}
    metrics.held_partitions(1, {A: (12, 9), B: (3, 3)})
    assert listed() == {"0": 3.0, "1": 0.0}


class _Rebalanced(_Consumer):
    """A consumer whose group takes every other partition away while the position of one is
    asked; like aiokafka's, it refuses the high watermark of a partition it does not hold."""

    def highwater(self, tp: TopicPartition) -> int:
        assert tp in self.polls, "Partition is not assigned"
        return 10

    async def position(self, tp: TopicPartition) -> int:
        self.polls = {tp: self.polls[tp]}
        return 4


async def test_the_offset_lag_passes_over_a_partition_taken_away_while_it_is_noted() -> None:
    projector = _projector({}, set())
    projector._consumer = _Rebalanced({A: _ms(0.1), B: _ms(0.1)}, set())
    await projector._note_partition_lag()
    families = {f.name: f for f in projector.metrics.registry.collect()}
    lags = [s.value for s in families["tstore_projector_lag_offsets"].samples]
    assert lags == [6.0], "the partition still held, whichever was noted first"


def test_two_live_generations_report_the_larger_lag_and_their_own_offsets() -> None:
    """After a rebuild of some projections, two projectors run, each reading every partition:
    sharing one figure, the lag flipped between theirs with each fetch, and each one's offsets
    overwrote, or erased, the other's."""
    metrics = ProjectorMetrics()
    metrics.fetched(1, _ms(40), time.time())
    metrics.fetched(2, None, time.time())
    assert metrics.lag_s == pytest.approx(40, abs=1), "the generation behind"
    metrics.partition_lag(1, A, 10, 4)
    metrics.held_partitions(2, {A: (10, 10)})

    def offsets() -> dict[tuple[str, str], float]:
        return {
            (sample.labels["generation"], sample.labels["partition"]): sample.value
            for family in metrics.registry.collect()
            if family.name == "tstore_projector_lag_offsets"
            for sample in family.samples
        }

    assert offsets() == {("1", "0"): 6.0, ("2", "0"): 0.0}
    metrics.forget(1)  # a cut-over replaced generation 1
    assert metrics.lag_s == 0.0
    metrics.fetched(2, None, time.time())
    assert offsets() == {("2", "0"): 0.0}


def test_between_two_rounds_of_projectors_the_larger_last_lag_stands() -> None:
    metrics = ProjectorMetrics()
    metrics.fetched(1, _ms(30), time.time())
    metrics.fetched(2, _ms(3), time.time())
    metrics.forget(1)
    metrics.forget(2)
    assert metrics.lag_s == pytest.approx(30, abs=1)
    metrics.fetched(2, None, time.time())
    assert metrics.lag_s == 0.0
