"""Giving up on a Kafka client that can no longer deliver, within about a second.

aiokafka retries on its own until the request timeout, twice over: the wait on a batch's
acknowledgements lasts up to ``2 * request_timeout_ms`` before the delivery thread's deadline
replaces the client. Meanwhile delivery reports nothing, and one case is worse than slow: a
broker shut down gracefully while a batch is in flight leaves the batch's partition without a
leader, and aiokafka's sender then loops with no back-off (it asks for metadata, which fails at
once with the broker gone, and goes round again): some 13,000 log records a second at 100% CPU.

Two things are done. Each client's metadata updates are paced (``pace_metadata_updates``):
one asked for while the last failed waits ``METADATA_BACKOFF_S`` first, which turns the loop
into some ten rounds a second. And while a batch waits, its client is watched: when a
partition it has data for has had no leader, or no broker has answered a metadata request,
for ``STALLED_S``, the client is given up with a ``KafkaError`` that says which, and the
delivery thread's own pause, back-off and ``kafka_unavailable`` log take over. Both read
aiokafka's internals (the accumulator's pending partitions, the cluster's refresh times);
where an aiokafka version lacks them, the watch falls back to every partition of the batch's
topics, or skips that sign.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

T = TypeVar("T")

STALLED_S = 1.0
"""How long a sign of a client that cannot deliver may last before the client is given up."""
WATCH_EVERY_S = 0.1
METADATA_BACKOFF_S = 0.1
"""aiokafka's own ``retry_backoff_ms`` default: how long a metadata update asked for right
after a failed one waits."""


def _last_update_failed(producer: AIOKafkaProducer) -> bool:
    cluster = producer.client.cluster
    tried = getattr(cluster, "_last_refresh_ms", 0)
    return bool(tried > getattr(cluster, "_last_successful_refresh_ms", 0))


def pace_metadata_updates(producer: AIOKafkaProducer) -> None:
    """Make the client's ``force_metadata_update`` wait ``METADATA_BACKOFF_S`` before asking
    again while the last update failed. Its callers await the future it returns, or wait on it
    among others (the sender routine), so one that resolves later serves them all."""
    client = producer.client
    force = client.force_metadata_update

    def paced() -> asyncio.Future[bool]:
        if not _last_update_failed(producer):
            return force()  # type: ignore[no-any-return]
        loop = asyncio.get_running_loop()
        later: asyncio.Future[bool] = loop.create_future()

        def settle(update: asyncio.Future[bool]) -> None:
            if later.done():
                return
            if update.cancelled():
                later.cancel()
            elif (error := update.exception()) is not None:
                later.set_exception(error)
            else:
                later.set_result(update.result())

        # A future, not a task: one left pending by a client given up goes without a warning.
        loop.call_later(METADATA_BACKOFF_S, lambda: force().add_done_callback(settle))
        return later

    client.force_metadata_update = paced


def stall_of(producer: AIOKafkaProducer, topics: Iterable[str]) -> str | None:
    """Why the client cannot deliver now, or None: a pending partition without a leader, or a
    last metadata request that no broker answered."""
    cluster = producer.client.cluster
    for tp in _pending_partitions(producer, topics):
        if cluster.leader_for_partition(tp) in (None, -1):
            return f"partition {tp.topic}-{tp.partition} has no leader"
    if _last_update_failed(producer):
        return "no broker answers a metadata request"
    return None


def _pending_partitions(producer: AIOKafkaProducer, topics: Iterable[str]) -> list[TopicPartition]:
    batches = getattr(getattr(producer, "_message_accumulator", None), "_batches", None)
    if isinstance(batches, dict):
        return [tp for tp, pending in list(batches.items()) if pending]
    cluster = producer.client.cluster
    return [
        TopicPartition(topic, partition)
        for topic in topics
        for partition in sorted(cluster.partitions_for_topic(topic) or ())
    ]


async def watched(producer: AIOKafkaProducer, topics: Iterable[str], step: Awaitable[T]) -> T:
    """``step`` (sending on ``producer`` and waiting for the acknowledgements), or a KafkaError
    naming the stall once one has lasted ``STALLED_S``; ``step`` is cancelled then."""
    task = asyncio.ensure_future(step)
    topics = list(topics)
    since: float | None = None
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=WATCH_EVERY_S)
            if done:
                return task.result()
            stall = stall_of(producer, topics)
            if stall is None:
                since = None
            elif since is None:
                since = time.monotonic()
            elif time.monotonic() - since >= STALLED_S:
                raise KafkaError(f"the Kafka client gave up: {stall} for {STALLED_S:g} s")
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
