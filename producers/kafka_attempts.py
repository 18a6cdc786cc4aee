"""One attempt at Kafka for the delivery thread: a client started, a batch published on it and
its outcome told record by record, and a client given up.

Every wait on the client has a deadline (``Attempts.within_deadline``): its ``start`` retries
some errors for ever (a producer id the broker does not grant), and an acknowledgement that
never comes would otherwise hold the queue's head for good. The wait on a batch is watched as
well (``stalls.py``), so that a client that cannot deliver is given up within about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from producers.delivery_config import DeliveryConfig
from producers.frames import SpoolRecord
from producers.gil import breathe
from producers.kafka import MAX_REQUEST_BYTES, KafkaSecurity, kafka_producer
from producers.refusals import REFUSED_FOR_GOOD, Outcome, outcome
from producers.stalls import pace_metadata_updates, watched

T = TypeVar("T")

log = structlog.get_logger(__name__)

STOP_S = 5.0
"""How long a Kafka client may take to stop: it waits for requests in flight, which a
frozen broker never answers."""


class Attempts:
    def __init__(self, bootstrap: str, security: KafkaSecurity, config: DeliveryConfig) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._config = config

    async def within_deadline(self, step: Awaitable[T]) -> T:
        """``step``, or TimeoutError after twice the client's request timeout: the client's own
        timeouts have passed by then, so it is stuck rather than slow."""
        return await asyncio.wait_for(step, 2 * self._config.request_timeout_ms / 1000)

    async def connect(
        self, discard: Callable[[AIOKafkaProducer], Awaitable[None]]
    ) -> AIOKafkaProducer:
        """A started client, built with ``MAX_REQUEST_BYTES`` (what ``refusals.py`` checks
        records against); one that failed to start is given to ``discard``, which gives it up
        within what a close in progress leaves (a close of 0 s waited 5 s for a client
        cancelled as it connected)."""
        producer = kafka_producer(
            self._bootstrap,
            security=self._security,
            compression=self._config.compression,
            linger_ms=self._config.linger_ms,
            request_timeout_ms=self._config.request_timeout_ms,
            max_request_size=MAX_REQUEST_BYTES,
        )
        pace_metadata_updates(producer)
        try:
            await producer.start()
        except BaseException:
            await discard(producer)
            raise
        return producer

    async def publish(self, producer: AIOKafkaProducer, records: Sequence[SpoolRecord]) -> Outcome:
        """Send the records, wait for their acknowledgements, watched for a stall."""
        topics = {r.topic for r in records}
        return await self.within_deadline(watched(producer, topics, _publish(producer, records)))


async def _publish(producer: AIOKafkaProducer, records: Sequence[SpoolRecord]) -> Outcome:
    """Send the records and wait for their acknowledgements. A topic the broker does not have
    is a failure like a broker out of reach, named: aiokafka waits for it a request timeout
    long, logging a warning ten times a second, and says only that it timed out. A record the
    client refuses at ``send`` ends the batch there."""
    wanted = {r.topic for r in records}
    if missing := wanted - producer.client.cluster.topics():
        await producer.client.force_metadata_update()
        if missing := wanted - producer.client.cluster.topics():
            raise KafkaError(
                f"the broker has no topic {', '.join(sorted(missing))}: create the topics "
                "(`tstore create-topics`, or a projector's first start)"
            )
    deliveries = []
    refused: list[BaseException | None] = []
    since = time.perf_counter()
    for record in records:
        since = await breathe(since)
        try:
            deliveries.append(await producer.send(record.topic, record.value, key=record.key))
        except REFUSED_FOR_GOOD as exc:
            refused.append(exc)
            break
    results = await asyncio.gather(*deliveries, return_exceptions=True)
    return outcome([r if isinstance(r, BaseException) else None for r in results] + refused)


async def give_up(producer: AIOKafkaProducer, limit_s: float) -> None:
    """Stop a client within ``limit_s``, without delivering what it still holds: its batches
    go again on the next client. Its ``stop`` would wait for them to be delivered, with its
    sender spinning meanwhile if a partition has no leader (``stalls.py``). So its sender is
    stopped first, and then what it held is let go (``_let_go``)."""
    deadline = time.monotonic() + limit_s
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    if sender is not None and task is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sender.close(), limit_s)
        if task.done():
            _let_go(producer)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), max(0.0, deadline - time.monotonic()))


def _let_go(producer: AIOKafkaProducer) -> None:
    """Resolve the batches a stopped client's sender left, acknowledging nothing (the futures
    of our records were settled or cancelled before), so that ``stop`` need not wait for them.
    A batch sent again has left the accumulator's pending set while the callback that takes
    it out on completion stays: it is put back first, or that callback raises."""
    accumulator = getattr(producer, "_message_accumulator", None)
    batches = getattr(accumulator, "_batches", None)
    pending = getattr(accumulator, "_pending_batches", None)
    if not isinstance(batches, dict) or not isinstance(pending, set):
        return
    held = [batch for queued in batches.values() for batch in queued]
    pending.update(held)
    for batch in list(pending):
        with contextlib.suppress(Exception):
            batch.done_noack()


class Retries:
    """The policy between attempts: a failed one is counted by the caller, said once per
    outage (``kafka_unavailable``; an error of an unexpected kind, a bug or a bootstrap the
    client cannot parse, once per kind, named, without a traceback) and followed by a pause
    that doubles while failures last; the first success after them says ``kafka_available``.
    """

    def __init__(self, config: DeliveryConfig) -> None:
        self._config = config
        self._pause = config.retry_pause_s
        self._down_since: float | None = None
        self._unexpected: set[str] = set()

    def failed(self, exc: Exception, *, during: str, backlog: int) -> float:
        """Say the failure if it is news; returns the pause to make before the next attempt."""
        error = str(exc) or type(exc).__name__
        if not isinstance(exc, KafkaError | OSError | TimeoutError):
            kind = type(exc).__name__
            if kind not in self._unexpected:
                self._unexpected.add(kind)
                log.error("delivery_attempt_failed", error=f"{kind}: {error}", during=during)
        elif self._down_since is None:
            log.warning("kafka_unavailable", error=error, during=during, backlog=backlog)
        if self._down_since is None:
            self._down_since = time.monotonic()
        pause, self._pause = self._pause, min(2 * self._pause, self._config.max_retry_pause_s)
        return pause

    def succeeded(self) -> None:
        """Kafka answered: the next failure pauses briefly again."""
        self._pause = self._config.retry_pause_s
        if self._down_since is not None:
            log.info("kafka_available", down_s=round(time.monotonic() - self._down_since, 1))
            self._down_since = None
