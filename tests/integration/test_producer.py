"""TranscriptProducer against a real broker: delivery, order, outages and restarts."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from structlog.testing import capture_logs

from bench.loop_lag import LoopLag
from consumers.projector import Projector
from consumers.storage.clickhouse import Store
from consumers.topics_admin import ensure_topics
from producers import DeliveryConfig, TranscriptProducer
from schemas import Topics
from tests.conftest import unique_name
from tests.integration.reading import read_events
from tests.waiting import until
from tstore.devkafka import DevKafka
from tstore.devkafka.broker import free_port

pytestmark = pytest.mark.integration

FAST_FAILURE = DeliveryConfig(memory_events=20, request_timeout_ms=3_000, retry_pause_s=0.2)


async def _read_all(bootstrap: str, topic: str, expected: int) -> list[tuple[str, int]]:
    return [(e.session_id, e.seq) for e in await read_events(bootstrap, topic, expected)]


def _assert_complete_and_in_order(seen: list[tuple[str, int]], expected: dict[str, int]) -> None:
    """Every (session, seq) arrived, and per session first arrivals are in seq order."""
    first: dict[str, list[int]] = defaultdict(list)
    for session, seq in seen:
        if seq not in first[session]:
            first[session].append(seq)
    assert {s: sorted(q) for s, q in first.items()} == {
        s: list(range(n)) for s, n in expected.items()
    }
    for session, seqs in first.items():
        assert seqs == sorted(seqs), f"{session} out of order: {seqs}"


def _talk(producer: TranscriptProducer, session: str, turns: range) -> None:
    for turn in turns:
        started = datetime.now(UTC)
        producer.turn_started(session, f"t{turn}", "user", started_at=started)
        producer.turn_stopped(session, f"t{turn}", "user", text=f"turn {turn}", started_at=started)


async def test_events_reach_kafka_in_session_order(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="bot", topics=topics, spool_dir=tmp_path
    ) as producer:
        for turn in range(48):
            _talk(producer, f"s{turn % 4}", range(turn, turn + 1))
    assert producer.stats.published == 96
    assert producer.stats.dropped == producer.stats.spooled == 0
    seen = await _read_all(kafka_bootstrap, topics.turn_events, 96)
    _assert_complete_and_in_order(seen, {f"s{i}": 24 for i in range(4)})


async def test_a_spool_folder_that_cannot_be_used_leaves_delivery_from_memory(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """A read-only file system under ``spool_dir`` stopped the bot at the producer's
    constructor."""
    (tmp_path / "read-only").write_text("")
    with capture_logs() as logged:
        async with TranscriptProducer(
            kafka_bootstrap, bot_id="bot", topics=topics, spool_dir=tmp_path / "read-only" / "s"
        ) as producer:
            _talk(producer, "s0", range(5))
    assert producer.stats.published == 10
    assert "spool_unavailable" in [e["event"] for e in logged]
    _assert_complete_and_in_order(
        await _read_all(kafka_bootstrap, topics.turn_events, 10), {"s0": 10}
    )


async def test_topics_the_broker_lacks_are_named_and_waited_for(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A bot started before its topics exist: aiokafka logged "not found in cluster metadata"
    ten times a second for a request timeout, the producer said nothing and counted no error.
    Now the first attempt names the topic, and the events are delivered once it exists."""
    topics = Topics(prefix=f"{unique_name('absent')}.")
    with capture_logs() as logs:
        async with TranscriptProducer(
            kafka_bootstrap, bot_id="bot", topics=topics, spool_dir=tmp_path, delivery=FAST_FAILURE
        ) as producer:
            _talk(producer, "s0", range(2))
            await until(lambda: producer.stats.errors > 0, 20, "an error counted")
            await ensure_topics(kafka_bootstrap, topics, partitions=1)
            await until(lambda: producer.stats.published == 4, 30, "the events delivered")
    (unavailable,) = [e for e in logs if e["event"] == "kafka_unavailable"]
    assert f"the broker has no topic {topics.turn_events}" in unavailable["error"]
    assert "tstore create-topics" in unavailable["error"]
    assert len(await _read_all(kafka_bootstrap, topics.turn_events, 4)) == 4


FIRST_BURST, BURST = 4_000, 50_000
SMALL_QUEUE = DeliveryConfig(memory_events=200, batch_events=200)
"""A memory queue that a burst taken in at once overflows into the spool."""


def _start_turns(producer: TranscriptProducer, turns: range) -> None:
    for turn in turns:
        producer.turn_started(f"s{turn % 5}", f"t{turn}", "user")


@contextlib.contextmanager
def _delivery_thread_paused(producer: TranscriptProducer) -> Iterator[None]:
    """Stop the delivery thread's loop between two of its steps until the block ends, so
    that what the bot submits meanwhile is taken in at once, whatever the broker's speed."""
    held, go_on = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        go_on.wait()

    loop = producer._delivery._loop
    assert loop is not None
    loop.call_soon_threadsafe(hold)
    held.wait()
    try:
        yield
    finally:
        go_on.set()


async def test_a_close_right_after_a_burst_delivers_the_burst_through_the_spool(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """A close while the delivery thread was still taking a burst in used to end the sender as
    soon as its queue ran dry, though the rest of the burst was on its way: that rest stayed
    in the spool for the next process (bench.producer: 60,000 of 100,000). Here the sender is
    still busy with a first burst when a close comes with a far larger one not yet taken in."""
    producer = TranscriptProducer(
        kafka_bootstrap,
        bot_id="bot",
        topics=topics,
        spool_dir=tmp_path,
        delivery=SMALL_QUEUE,
        close_timeout_s=60,
    )
    producer.start()
    _start_turns(producer, range(FIRST_BURST))
    await until(lambda: producer.stats.published > 0, within_s=30)
    with _delivery_thread_paused(producer):
        assert producer.stats.published < FIRST_BURST
        _start_turns(producer, range(FIRST_BURST, BURST))
        closing = asyncio.create_task(producer.close())
        await until(lambda: not producer.running, within_s=5)
    await closing
    assert producer.stats.spooled > 0
    assert (producer.stats.published, producer.stats.spool_bytes) == (BURST, 0)
    seen = await _read_all(kafka_bootstrap, topics.turn_events, BURST)
    _assert_complete_and_in_order(seen, {f"s{i}": BURST // 5 for i in range(5)})


def test_a_bad_value_raises_at_the_call_site_and_uses_no_seq(tmp_path: Path) -> None:
    producer = TranscriptProducer(f"127.0.0.1:{free_port()}", bot_id="bot", spool_dir=tmp_path)
    with pytest.raises(ValueError, match="role"):
        producer.turn_started("s", "t", "robot")  # type: ignore[arg-type]
    producer.start()
    try:
        assert producer.turn_started("s", "t", "user").seq == 0
    finally:
        asyncio.run(producer.close(0.1))


async def test_starting_while_kafka_is_down_spools_and_delivers_later(tmp_path: Path) -> None:
    broker = DevKafka()
    topics = Topics("late.")
    producer = TranscriptProducer(
        broker.bootstrap,
        bot_id="bot",
        topics=topics,
        spool_dir=tmp_path / "spool",
        delivery=FAST_FAILURE,
    )
    try:
        async with producer:
            _talk(producer, "s", range(40))
            await asyncio.sleep(1)
            assert producer.stats.published == 0
            assert producer.stats.spooled > 0
            await asyncio.to_thread(broker.start)
            await ensure_topics(broker.bootstrap, topics, partitions=2)
            await until(lambda: producer.stats.published >= 80, within_s=30)
        seen = await _read_all(broker.bootstrap, topics.turn_events, 80)
        _assert_complete_and_in_order(seen, {"s": 80})
    finally:
        await asyncio.to_thread(broker.close)


async def _assert_projected_once(
    bootstrap: str, topics: Topics, clickhouse: Client, turns: dict[str, int]
) -> None:
    """The projection holds each session's turns exactly once, complete, in order."""
    store = Store(clickhouse)
    async with Projector(
        bootstrap=bootstrap, topics=topics, group_id=f"{topics.prefix}check", store=store
    ) as projector:
        await projector.catch_up()
    for session, count in turns.items():
        rows = store.session(session)
        assert [r.turn_id for r in rows] == [f"t{i}" for i in range(count)]
        assert all(r.complete for r in rows)


async def _bot_session(
    producer: TranscriptProducer, session: str, turns: int, pause_s: float
) -> None:
    for turn in range(turns):
        _talk(producer, session, range(turn, turn + 1))
        await asyncio.sleep(pause_s)


async def test_a_broker_outage_mid_session_loses_nothing_and_never_stalls_the_bot(
    own_broker: DevKafka, tmp_path: Path, clickhouse: Client
) -> None:
    topics = Topics("outage.")
    await ensure_topics(own_broker.bootstrap, topics, partitions=3)
    async with TranscriptProducer(
        own_broker.bootstrap,
        bot_id="bot",
        topics=topics,
        spool_dir=tmp_path / "spool",
        delivery=FAST_FAILURE,
    ) as producer:
        with LoopLag() as lag:
            talking = asyncio.gather(*(_bot_session(producer, f"s{i}", 80, 0.1) for i in range(3)))
            await asyncio.sleep(1.5)
            await asyncio.to_thread(own_broker.kill)
            await asyncio.sleep(4)
            spooled_during_outage = producer.stats.spooled
            await asyncio.to_thread(own_broker.start)
            await talking
        await until(lambda: producer.stats.backlog == 0 and producer.stats.spool_bytes == 0, 30)
    assert spooled_during_outage > 0
    assert producer.stats.dropped == 0
    seen = await _read_all(own_broker.bootstrap, topics.turn_events, 480)
    _assert_complete_and_in_order(seen, {f"s{i}": 160 for i in range(3)})
    await _assert_projected_once(
        own_broker.bootstrap, topics, clickhouse, {f"s{i}": 80 for i in range(3)}
    )
    print(f"loop lag p50={lag.quantile_ms(0.5):.2f}ms p99={lag.quantile_ms(0.99):.2f}ms")
    assert lag.quantile_ms(0.99) < 25, "the bot's loop stalled"


_BOT = """
import asyncio, sys
from datetime import UTC, datetime
from producers import DeliveryConfig, TranscriptProducer
from schemas import Topics

async def main():
    producer = TranscriptProducer(sys.argv[1], bot_id="bot", topics=Topics("restart."),
        spool_dir=sys.argv[2], close_timeout_s=1.0,
        delivery=DeliveryConfig(memory_events=20, request_timeout_ms=2000))
    async with producer:
        for turn in range(30):
            now = datetime.now(UTC)
            producer.turn_started("s", f"t{turn}", "user", started_at=now)
            producer.turn_stopped("s", f"t{turn}", "user", text="hi", started_at=now)
            await asyncio.sleep(0.02)
    print(producer.stats.published, producer.stats.spooled, producer.stats.dropped)

asyncio.run(main())
"""


async def test_events_spooled_by_a_bot_that_exited_are_delivered_by_the_next(
    own_broker: DevKafka, tmp_path: Path, clickhouse: Client
) -> None:
    topics = Topics("restart.")
    await ensure_topics(own_broker.bootstrap, topics, partitions=2)
    await asyncio.to_thread(own_broker.kill)
    first = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _BOT, own_broker.bootstrap, str(tmp_path / "spool")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    published, spooled, dropped = map(int, first.stdout.splitlines()[-1].split())
    assert (published, dropped) == (0, 0)
    assert spooled == 60
    await asyncio.to_thread(own_broker.start)
    async with TranscriptProducer(
        own_broker.bootstrap, bot_id="bot", topics=topics, spool_dir=tmp_path / "spool"
    ) as restarted:
        await until(lambda: restarted.stats.spool_bytes == 0, within_s=30)
    seen = await _read_all(own_broker.bootstrap, topics.turn_events, 60)
    _assert_complete_and_in_order(seen, {"s": 60})
    await _assert_projected_once(own_broker.bootstrap, topics, clickhouse, {"s": 30})
