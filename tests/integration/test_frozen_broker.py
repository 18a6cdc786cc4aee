"""A broker that stops answering without closing its connections (a paused JVM, a partition
that drops packets): delivery must neither hang behind it nor lose what waits for it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from consumers.topics_admin import ensure_topics
from producers import DeliveryConfig, TranscriptProducer
from schemas import Topics
from tests.integration.reading import read_events
from tests.waiting import until
from tstore.devkafka import DevKafka

pytestmark = pytest.mark.integration

QUICK = DeliveryConfig(request_timeout_ms=1_000, retry_pause_s=0.2, max_retry_pause_s=0.5)
"""Deadlines of a second or two, so that a freeze outlasts every one of them."""


@pytest.fixture
def broker(own_broker: DevKafka) -> Iterator[DevKafka]:
    """The test's own broker, thawed before it is stopped even if the test fails frozen."""
    yield own_broker
    _signal(own_broker, signal.SIGCONT)


def _signal(broker: DevKafka, sig: signal.Signals) -> None:
    assert broker.pid is not None
    os.kill(broker.pid, sig)


def _say(producer: TranscriptProducer, session: str, turns: range) -> None:
    for turn in turns:
        producer.turn_started(session, f"t{turn}", "user")


async def test_delivery_resumes_after_a_freeze_longer_than_every_deadline(
    broker: DevKafka, tmp_path: Path
) -> None:
    topics = Topics("frozen.")
    await ensure_topics(broker.bootstrap, topics, partitions=2)
    async with TranscriptProducer(
        broker.bootstrap, bot_id="b", topics=topics, spool_dir=tmp_path / "spool", delivery=QUICK
    ) as producer:
        _say(producer, "s", range(10))
        await until(lambda: producer.stats.published == 10, 30, "delivery before the freeze")
        _signal(broker, signal.SIGSTOP)
        _say(producer, "s", range(10, 20))
        await asyncio.sleep(6)
        _signal(broker, signal.SIGCONT)
        await until(lambda: producer.stats.published >= 20, 60, "delivery after the freeze")
    seqs = {e.seq for e in await read_events(broker.bootstrap, topics.turn_events, 20)}
    assert seqs == set(range(20))


async def test_a_close_during_a_freeze_says_what_the_sender_waits_for_and_keeps_the_events(
    broker: DevKafka, tmp_path: Path
) -> None:
    topics = Topics("frozen.")
    await ensure_topics(broker.bootstrap, topics, partitions=2)
    spool = tmp_path / "spool"
    producer = TranscriptProducer(
        broker.bootstrap, bot_id="b", topics=topics, spool_dir=spool, delivery=QUICK
    )
    with capture_logs() as logged:
        producer.start()
        _say(producer, "s", range(3))
        await until(lambda: producer.stats.published == 3, 30, "delivery before the freeze")
        _signal(broker, signal.SIGSTOP)
        _say(producer, "s", range(3, 8))
        await asyncio.sleep(0.3)
        began = time.monotonic()
        await producer.close(timeout_s=0.5)
        took_s = time.monotonic() - began
    assert took_s < 0.5 + 2, f"close kept the bot {took_s:.1f} s"  # it waited 5.5 s to stop
    unfinished = [e for e in logged if e["event"] == "delivery_unfinished"]
    assert unfinished, [e["event"] for e in logged]
    assert unfinished[0]["queued"] == 5
    assert unfinished[0]["sender"].startswith(("publishing", "connecting", "pausing"))
    _signal(broker, signal.SIGCONT)
    async with TranscriptProducer(
        broker.bootstrap, bot_id="b", topics=topics, spool_dir=spool, delivery=QUICK
    ) as successor:
        await until(lambda: successor.stats.published == 5, 60, "the spooled events")
    seqs = {e.seq for e in await read_events(broker.bootstrap, topics.turn_events, 8)}
    assert seqs == set(range(8))
