"""Projector throughput against a bare consumer, and freshness, on one pre-filled topic.

(a) a bare aiokafka consumer drains the topic and discards; (b) the projector projects the same
topic into the embedded ClickHouse; (c) at a steady 5k events/s, the time from produce to
visible in a query. JSON keys: ``events``, ``bare_drain_eps``, ``projector_eps``, ``ratio``
(b/a), ``freshness_p50_ms``, ``freshness_p99_ms``, plus where the projector's time went.
(a) and (b) take turns for ``ROUNDS`` rounds and report their medians (and their extremes).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from bench.codec import realistic_events
from bench.report import run
from consumers.projector import Projector
from consumers.storage.clickhouse import EMBEDDED, Store, connect
from consumers.topics_admin import ensure_topics
from producers.kafka import kafka_producer
from schemas import EventCodec, Topics
from tstore.devkafka import DevKafka

PARTITIONS = 6
ROUNDS = 3
"""Throughputs are the median of this many rounds: on a shared two-core machine one drain of
the same topic took anything from 2.3 s to 3.6 s."""
FRESHNESS_RATE = 5_000
FRESHNESS_SECONDS = 10


async def prefill(bootstrap: str, topics: Topics, events: int) -> None:
    codec = EventCodec()
    producer = kafka_producer(bootstrap, linger_ms=20)
    await producer.start()
    try:
        for start in range(0, events, 20_000):
            batch = realistic_events(min(20_000, events - start), start=start)
            deliveries = [
                await producer.send(topics.for_event(e), codec.encode(e), key=e.session_id.encode())
                for e in batch
            ]
            await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def bare_drain_eps(bootstrap: str, topics: Topics, events: int) -> float:
    consumer = AIOKafkaConsumer(
        *topics.events,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen = 0
        began = time.perf_counter()
        while seen < events:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=50_000)).values():
                seen += len(records)
        return events / (time.perf_counter() - began)
    finally:
        await consumer.stop()


async def projector_eps(
    bootstrap: str, topics: Topics, store: Store, events: int
) -> tuple[float, dict[str, float]]:
    """Events per second, and the share of the time each stage was busy: ``fetch``,
    ``decode``, ``write``, and ``waiting`` (the loop waiting for room in the pipeline). The
    stages overlap, so the shares add up to more than one."""
    async with Projector(
        bootstrap=bootstrap, topics=topics, group_id=f"bench-{uuid.uuid4().hex}", store=store
    ) as projector:
        began = time.perf_counter()
        await projector.catch_up(limit_s=3600)
        elapsed = time.perf_counter() - began
    assert projector.stats.events == events, projector.stats
    shares = {f"share_{k}": round(v / elapsed, 3) for k, v in projector.stats.seconds.items()}
    return events / elapsed, shares


async def freshness_ms(bootstrap: str, topics: Topics, store: Store) -> list[float]:
    """Publish small batches at a steady rate, each a session of its own, and time until each
    session's events are visible in ``session_events``."""
    codec = EventCodec()
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop, published = asyncio.Event(), asyncio.Event()
    per_batch = 50
    producer = kafka_producer(bootstrap, linger_ms=1)
    await producer.start()

    async def publish() -> None:
        interval = per_batch / FRESHNESS_RATE
        for n in range(FRESHNESS_RATE * FRESHNESS_SECONDS // per_batch):
            session = f"fresh-{n:06d}"
            batch = realistic_events(per_batch, session_id=session)
            sent[session] = time.perf_counter()
            for event in batch:
                await producer.send(
                    topics.for_event(event), codec.encode(event), key=session.encode()
                )
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - sent[session])))

    async def watch() -> None:
        while not published.is_set() or len(seen) < len(sent):
            pending = [s for s in sent if s not in seen]
            if pending:
                rows = await asyncio.to_thread(
                    store.client.query,
                    "SELECT session_id FROM session_events WHERE session_id IN {s:Array(String)} "
                    "GROUP BY session_id HAVING uniqExact(seq) = {n:UInt32}",
                    parameters={"s": pending, "n": per_batch},
                )
                now = time.perf_counter()
                for (session,) in rows.result_rows:
                    seen.setdefault(session, now)
            await asyncio.sleep(0.01)

    async with Projector(
        bootstrap=bootstrap, topics=topics, group_id=f"fresh-{uuid.uuid4().hex}", store=store
    ) as projector:
        await projector.catch_up(limit_s=3600)
        projecting = asyncio.create_task(projector.run(stop))
        watching = asyncio.create_task(watch())
        await publish()
        await producer.stop()
        published.set()
        await asyncio.wait_for(watching, 60)
        stop.set()
        await projecting
    return sorted(1000 * (seen[s] - sent[s]) for s in sent)


def measure(events: int) -> dict[str, float]:
    # The embedded engine lives as long as the process and may still be writing its parts
    # when the folder goes: what it leaves is removed as far as it can be.
    with (
        DevKafka(heap="1g") as broker,
        tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as folder,
    ):
        topics = Topics("bench.")
        asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=PARTITIONS))
        asyncio.run(prefill(broker.bootstrap, topics, events))
        bare: list[float] = []
        projected: list[tuple[float, dict[str, float]]] = []
        dsn = f"{EMBEDDED}{Path(folder) / 'clickhouse'}"
        for round_ in range(ROUNDS):  # interleaved, so a slow spell of the machine hits both
            bare.append(asyncio.run(bare_drain_eps(broker.bootstrap, topics, events)))
            store = Store(connect(dsn, f"bench{round_}"))
            if round_:  # the round before leaves no merges behind to slow this one down
                store.client.command(f"DROP DATABASE bench{round_ - 1} SYNC")
            projected.append(asyncio.run(projector_eps(broker.bootstrap, topics, store, events)))
        fresh = asyncio.run(freshness_ms(broker.bootstrap, topics, store))
    bare.sort()
    projected.sort(key=lambda run: run[0])
    projector, shares = projected[ROUNDS // 2]
    return {
        "events": events,
        "bare_drain_eps": bare[ROUNDS // 2],
        "projector_eps": projector,
        "ratio": projector / bare[ROUNDS // 2],
        "freshness_p50_ms": fresh[len(fresh) // 2],
        "freshness_p99_ms": fresh[int(0.99 * (len(fresh) - 1))],
        "rounds": ROUNDS,
        "bare_drain_eps_min": bare[0],
        "bare_drain_eps_max": bare[-1],
        "projector_eps_min": projected[0][0],
        "projector_eps_max": projected[-1][0],
        **shares,
    }


if __name__ == "__main__":
    run(__doc__ or "", 1_000_000, measure)
