"""The producer against a real broker that refuses an event for good, or goes away gracefully
while a batch is in flight: delivery goes on, and says what happened."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from structlog.testing import capture_logs

from consumers.topics_admin import ensure_topics
from producers import TranscriptProducer
from producers.frames import SpoolRecord
from producers.kafka import MAX_EVENT_BYTES
from producers.spool import Spool
from schemas import EventCodec, ProducerInfo, Topics, TurnStopped, WordTiming
from tests.conftest import unique_name
from tests.integration.reading import read_events
from tests.waiting import until
from tstore.devkafka import DevKafka

pytestmark = pytest.mark.integration


def _turn(session_id: str, seq: int, text: str, words: tuple[WordTiming, ...] = ()) -> bytes:
    """A TurnStopped, encoded as the producer spools it."""
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    event = TurnStopped(
        session_id=session_id,
        bot_id="bot",
        seq=seq,
        occurred_at=t0,
        producer=ProducerInfo(framework="test", framework_version="0", library_version="0"),
        turn_id=f"t{seq}",
        role="user",
        started_at=t0,
        stopped_at=t0,
        text=text,
        words=words,
    )
    return EventCodec().encode(event)


def _oversized(session_id: str, seq: int) -> bytes:
    """A valid TurnStopped that encodes to more than a Kafka request may hold, as an older
    version accepted and spooled it."""
    words = tuple(WordTiming(text="😀" * 8, start=i / 100, end=(i + 1) / 100) for i in range(9000))
    value = _turn(session_id, seq, "😀" * 200_000, words)
    assert len(value) > MAX_EVENT_BYTES
    return value


async def test_a_spooled_event_kafka_never_takes_is_dropped_and_the_rest_delivered(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """An event too large for Kafka, left in the spool by an older version, was retried for
    ever: everything behind it waited, and every restart found it first again."""
    slot = tmp_path / "slot-0"
    stuck = Spool(slot, max_bytes=1 << 30)
    stuck.append(
        [
            SpoolRecord(topics.turn_events, b"old", _oversized("old", 0)),
            SpoolRecord(topics.turn_events, b"old", _turn("old", 1, "hello")),
        ]
    )
    with capture_logs() as logs:
        async with TranscriptProducer(
            kafka_bootstrap, bot_id="bot", topics=topics, spool_dir=tmp_path
        ) as producer:
            producer.turn_started("new", "t0", "user")
            await until(lambda: producer.stats.published == 2, 30, "the rest delivered")
    assert producer.stats.dropped == 1
    assert producer.stats.spool_bytes == 0
    (refused,) = [e for e in logs if e["event"] == "event_refused"]
    assert (refused["session_id"], refused["seq"], refused["event_type"]) == (
        "old",
        0,
        "TurnStopped",
    )
    assert refused["bytes"] > refused["limit"] == MAX_EVENT_BYTES
    seen = await read_events(kafka_bootstrap, topics.turn_events, 2)
    assert sorted((e.session_id, e.seq) for e in seen) == [("new", 0), ("old", 1)]


async def test_an_event_the_broker_refuses_for_good_is_dropped_and_delivery_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A topic whose limit is below the client's: the broker's MessageSizeTooLargeError, not
    the client's check, refuses the event; it is dropped, not retried for ever."""
    topics = Topics(prefix=f"{unique_name('small')}.")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        small = {"max.message.bytes": "20000"}
        await admin.create_topics([NewTopic(t, 1, 1, topic_configs=small) for t in topics.events])
    finally:
        await admin.close()
    incompressible = base64.b64encode(os.urandom(60_000)).decode()
    with capture_logs() as logs:
        async with TranscriptProducer(
            kafka_bootstrap, bot_id="bot", topics=topics, spool_dir=tmp_path
        ) as producer:
            now = datetime.now(UTC)
            producer.turn_started("s", "t0", "user", started_at=now)
            producer.turn_stopped("s", "t0", "user", text=incompressible, started_at=now)
            producer.turn_started("s", "t1", "user", started_at=now)
            await until(lambda: producer.stats.published == 2, 30, "the others delivered")
    assert producer.stats.dropped == 1
    (refused,) = [e for e in logs if e["event"] == "event_refused"]
    assert (refused["session_id"], refused["seq"]) == ("s", 1)
    assert "MessageSizeTooLarge" in refused["reason"]
    seen = await read_events(kafka_bootstrap, topics.turn_events, 2)
    assert sorted({e.seq for e in seen}) == [0, 2]


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1


async def test_a_broker_stopped_mid_batch_is_given_up_soon_and_nothing_is_lost(
    own_broker: DevKafka, tmp_path: Path
) -> None:
    """A graceful shutdown with a batch in flight left its partition without a leader, and
    aiokafka's sender span (thousands of log records a second, a core busy) for up to twice
    the request timeout while delivery said nothing. Now the client is given up, which the
    stats and the log say, long before the request timeout (30 s) could have."""
    topics = Topics(prefix="graceful.")
    await ensure_topics(own_broker.bootstrap, topics, partitions=1)
    count = _Count()
    logging.getLogger("aiokafka").addHandler(count)
    sent = 0

    async def talk(producer: TranscriptProducer, seconds: float) -> None:
        nonlocal sent
        for _ in range(int(seconds / 0.02)):
            producer.turn_started("s", f"t{sent}", "user")
            sent += 1
            await asyncio.sleep(0.02)

    try:
        with capture_logs() as logs:
            async with TranscriptProducer(
                own_broker.bootstrap, bot_id="bot", topics=topics, spool_dir=tmp_path
            ) as producer:
                await talk(producer, 1)
                await until(lambda: producer.stats.published > 0, 30, "delivery before")
                stopping = asyncio.ensure_future(asyncio.to_thread(own_broker.stop))
                while not stopping.done():
                    await talk(producer, 0.2)
                during = count.records
                await until(lambda: producer.stats.errors > 0, 20, "the client given up")
                await talk(producer, 3)
                print(f"aiokafka log records during the outage: {count.records - during}")
                await asyncio.to_thread(own_broker.start)
                await talk(producer, 1)
                await until(lambda: producer.stats.published >= sent, 60, "all delivered")
    finally:
        logging.getLogger("aiokafka").removeHandler(count)
    unavailable = [e for e in logs if e["event"] == "kafka_unavailable"]
    assert unavailable
    assert producer.stats.dropped == 0
    seen = await read_events(own_broker.bootstrap, topics.turn_events, sent)
    if len({e.seq for e in seen}) < sent:  # duplicates (at-least-once) came before the rest
        seen = await read_events(own_broker.bootstrap, topics.turn_events, 2 * sent, 10)
    assert {e.seq for e in seen} == set(range(sent))
