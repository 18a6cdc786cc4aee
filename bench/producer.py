"""What the producer costs the bot's event loop, next to a bare aiokafka ``send()``.

Cost is CPU time of the loop's thread (``time.thread_time``) per event. For the bare client
that is ``send()`` plus its sender task's batching, compression and network work, all on the
loop, until every event is acknowledged. For ``TranscriptProducer`` it is the ``turn_stopped``
calls: validation, numbering, the hand-off; everything else runs in its delivery thread and
schedules nothing on the loop. Then the lag of the loop's timers, first with the loop idle (what
the machine gives any loop), then with the broker down while a bot keeps talking; the target is
their difference, ``loop_lag_p99_ms_added``, at most 1 ms. JSON keys: ``events``,
``bare_send_us``, ``producer_call_us``, ``ratio``, ``loop_lag_p99_ms_idle``,
``loop_lag_p99_ms_broker_down``, ``loop_lag_p99_ms_added``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.loop_lag import LoopLag
from bench.report import run
from consumers.topics_admin import ensure_topics
from producers import DeliveryConfig, TranscriptProducer
from producers.kafka import kafka_producer
from producers.producer import LIBRARY_VERSION
from schemas import EventCodec, ProducerInfo, Topics, TurnStopped
from tstore.devkafka import DevKafka
from tstore.devkafka.broker import free_port

TEXT = "Sorry to hear that. Could you give me the order number so I can look it up for you?"
STARTED = datetime(2026, 11, 21, tzinfo=UTC)


def _call(producer: TranscriptProducer, i: int) -> None:
    producer.turn_stopped(
        f"session-{i % 50}", f"turn-{i}", "assistant", text=TEXT, started_at=STARTED
    )


async def bare_send_us(bootstrap: str, topics: Topics, value: bytes, events: int) -> float:
    client = kafka_producer(bootstrap)
    await client.start()
    try:
        began = time.thread_time()
        deliveries = [
            await client.send(topics.turn_events, value, key=f"session-{i % 50}".encode())
            for i in range(events)
        ]
        await asyncio.gather(*deliveries)
        return 1e6 * (time.thread_time() - began) / events
    finally:
        await client.stop()


async def producer_call_us(bootstrap: str, topics: Topics, events: int, spool: Path) -> float:
    async with TranscriptProducer(
        bootstrap, bot_id="bench", topics=topics, spool_dir=spool, close_timeout_s=60
    ) as producer:
        began = time.thread_time()
        for i in range(events):
            _call(producer, i)
        cost = 1e6 * (time.thread_time() - began) / events
    assert producer.stats.published == events, producer.stats
    return cost


async def lag_p99_ms_idle(seconds: float = 5.0) -> float:
    """The same loop and timers with no bot talking: the machine's share of the lag."""
    with LoopLag() as lag:
        for _ in range(int(seconds * 100)):
            await asyncio.sleep(0.01)
    return lag.quantile_ms(0.99)


async def lag_p99_ms_broker_down(spool: Path, seconds: float = 5.0, rate: int = 500) -> float:
    """A bot emitting ``rate`` events/s in 10 ms bursts at a broker that is not there.

    The memory queue is kept small so that most events go through the spool's fsync path.
    """
    async with TranscriptProducer(
        f"127.0.0.1:{free_port()}",
        bot_id="bench",
        spool_dir=spool,
        close_timeout_s=0.5,
        delivery=DeliveryConfig(memory_events=500),
    ) as producer:
        with LoopLag() as lag:
            burst = rate // 100
            for tick in range(int(seconds * 100)):
                for j in range(burst):
                    _call(producer, tick * burst + j)
                await asyncio.sleep(0.01)
    return lag.quantile_ms(0.99)


def measure(events: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        with DevKafka() as broker:
            topics = Topics("bench.")
            asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=6))
            bare = asyncio.run(bare_send_us(broker.bootstrap, topics, _sample_bytes(), events))
            ours = asyncio.run(
                producer_call_us(broker.bootstrap, topics, events, Path(folder) / "up")
            )
        idle = asyncio.run(lag_p99_ms_idle())
        lag = asyncio.run(lag_p99_ms_broker_down(Path(folder) / "down"))
    return {
        "events": events,
        "bare_send_us": bare,
        "producer_call_us": ours,
        "ratio": ours / bare,
        "loop_lag_p99_ms_idle": idle,
        "loop_lag_p99_ms_broker_down": lag,
        "loop_lag_p99_ms_added": lag - idle,
    }


def _sample_bytes() -> bytes:
    """The bytes ``turn_stopped`` publishes, so both sides send the same payload."""
    event = TurnStopped(
        session_id="session-0",
        bot_id="bench",
        seq=0,
        producer=ProducerInfo(framework="custom", library_version=LIBRARY_VERSION),
        turn_id="turn-0",
        role="assistant",
        text=TEXT,
        started_at=STARTED,
        stopped_at=datetime.now(UTC),
    )
    return EventCodec().encode(event)


if __name__ == "__main__":
    run(__doc__ or "", 100_000, measure)
