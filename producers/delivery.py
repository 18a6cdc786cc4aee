"""Getting events from the bot to Kafka without the bot ever waiting.

Everything that can be slow (Avro encoding, the Kafka client, fsync) runs in a thread with an
event loop of its own; the bot's loop only appends to a deque. In that thread:

- ``_intake`` moves submitted events into a bounded in-memory queue, or to the on-disk spool
  when the queue is full or the spool still holds anything (so nothing overtakes what was
  spooled before it, which keeps every session in order).
- ``_send`` publishes the queue head in batches, refilling the queue from the spool, and drops a
  batch from the queue (and commits it in the spool) only once Kafka has acknowledged it. When
  Kafka fails, the batch stays at the head and is retried after a pause on a fresh client.
- ``close`` gives the queue a deadline to drain; what is still only in memory then is put in
  front of the spool, so the next process delivers it first. If the sender is still busy then,
  the log says with what and since when.
- Every wait on the Kafka client has a deadline: its ``start`` retries some errors for ever
  (a producer id the broker does not grant), and an acknowledgement that never comes would
  otherwise hold the queue's head for good. Past the deadline the client is replaced.
- What waits in the memory queue for Kafka's acknowledgement longer than half the durability
  window is written to the journal (``journal.py``), so that a killed process loses only what
  it accepted within the window. A new process puts the journal in front of the spool first.

Delivery is at-least-once: after a failure a batch may reach Kafka twice. Consumers deduplicate
by event id and seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from producers.journal import Journal
from producers.kafka import PLAINTEXT, KafkaSecurity, kafka_producer
from producers.spool import Spool, SpoolPosition, SpoolRecord
from schemas import Event

log = structlog.get_logger(__name__)

T = TypeVar("T")

_SLICE_S = 0.001
_PAUSE_S = 0.0001
_STOP_S = 5.0
"""How long a Kafka client may take to stop: it waits for requests in flight, which a
frozen broker never answers."""


async def _breathe(since: float) -> float:
    """Sleep a moment once the delivery thread has worked ``_SLICE_S`` since ``since``.

    Encoding and handing records to the Kafka client hold the GIL. A timer of the bot's loop
    that falls due meanwhile waits for it, up to the interpreter's switch interval (5 ms).
    Yielding to this thread's event loop does not hand the GIL over (the thread takes it back
    before the waiting one wakes, and asyncio's sleeps round up to whole milliseconds); a short
    real sleep does. So long runs of work (a burst, a batch) are cut into slices the bot's loop
    can slip between. Returns the start of the next slice.
    """
    if time.perf_counter() - since < _SLICE_S:
        return since
    _hand_over_the_gil()
    await asyncio.sleep(0)
    return time.perf_counter()


def _hand_over_the_gil() -> None:
    """A real sleep in an async function, on purpose (see ``_breathe``): only it lets the bot's
    thread take the GIL."""
    time.sleep(_PAUSE_S)


@dataclass
class DeliveryStats:
    published: int = 0
    spooled: int = 0
    dropped: int = 0
    errors: int = 0


@dataclass(frozen=True)
class _Queued:
    record: SpoolRecord
    spooled_at: SpoolPosition | None = None
    """Set when the record was read from the spool: committing it there marks it delivered."""


@dataclass(frozen=True)
class DeliveryConfig:
    memory_events: int = 10_000
    """Bound of the in-memory queue; beyond it events go to the spool."""
    batch_events: int = 1_000
    retry_pause_s: float = 0.5
    """First pause after a failure; doubles while Kafka stays down, up to ``max_retry_pause_s``."""
    max_retry_pause_s: float = 5.0
    request_timeout_ms: int = 30_000
    compression: str | None = "zstd"
    linger_ms: int = 5
    durability_window_ms: int = 200
    """A killed process loses no event accepted longer ago than this (see the README)."""


class Delivery:
    def __init__(
        self,
        bootstrap: str,
        spool: Spool,
        encode: Callable[[Event], SpoolRecord],
        config: DeliveryConfig | None = None,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.stats = DeliveryStats()
        self._bootstrap = bootstrap
        self._security = security
        self._spool = spool
        self._encode = encode
        self._config = config or DeliveryConfig()
        self._inbox: deque[Event] = deque()
        self._queue: deque[_Queued] = deque()
        self._journal = Journal(spool.directory / "journal")
        self._fresh_in = self._fresh_acked = self._journaled = 0
        """Counts of events that entered the queue from the inbox, were acknowledged, were
        journaled. Those entries are always the queue's head: they enter it only while the
        spool is empty, and the spool's records only after them."""
        self._journal_due: asyncio.TimerHandle | None = None
        self._idle = False
        self._closing = False
        self._taken_in = False
        """Set once ``close`` has taken in the last submitted event: until then the sender
        goes on even with an empty queue, as more may still come from the inbox."""
        self._phase, self._phase_since = "starting", time.monotonic()
        """What the sender is doing and since when, for the log of a close that finds it busy."""
        self._close_by = 0.0
        """When ``close`` must return (monotonic clock): the sender drains until shortly before
        it, then stops its client within what is left."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tstore-delivery", daemon=True)

    @property
    def backlog(self) -> int:
        """Events accepted but not yet acknowledged by Kafka, in memory (the spool aside)."""
        return len(self._inbox) + len(self._queue)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closing

    @property
    def started(self) -> bool:
        """Started at some time, running or not: a thread starts once."""
        return self._thread.ident is not None

    def start(self) -> None:
        self._thread.start()
        self._running.wait()

    def submit(self, event: Event) -> None:
        """Hand an event over; safe and cheap from any thread."""
        self._inbox.append(event)
        if self._idle and self._loop is not None and self._wake is not None:
            self._idle = False
            self._loop.call_soon_threadsafe(self._wake.set)

    def close(self, timeout_s: float) -> None:
        """Drain for at most ``timeout_s``, spool the rest, stop the thread. Blocks its caller."""
        if self._loop is None or self._wake is None or not self._thread.is_alive():
            return
        self._close_by = time.monotonic() + timeout_s
        self._closing = True
        self._loop.call_soon_threadsafe(self._wake.set)
        self._thread.join(timeout_s + 10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("delivery_thread_failed")
            self._running.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        work = asyncio.Event()
        self._running.set()
        self._recover()
        sender = asyncio.create_task(self._send(work))
        while not self._closing:
            self._idle = True
            if not self._inbox:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.1)
            self._idle = False
            self._wake.clear()
            await self._intake()
            work.set()
            await asyncio.sleep(0)  # the sender's turn, even while the bot keeps submitting
        await self._finish(sender, work)

    async def _finish(self, sender: asyncio.Task[None], work: asyncio.Event) -> None:
        await self._intake()
        self._taken_in = True
        work.set()
        left_s = self._close_by - time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sender, max(left_s / 2, left_s - 0.5))
        if self._queue:
            log.warning(
                "delivery_unfinished",
                sender=self._phase,
                for_s=round(time.monotonic() - self._phase_since, 1),
                queued=len(self._queue),
                errors=self.stats.errors,
            )
        unsent = [q.record for q in self._queue if q.spooled_at is None]
        self._queue.clear()
        self._to_spool(unsent, front=True)
        if self._journal_due is not None:
            self._journal_due.cancel()
        self._journal.close()
        log.info(
            "delivery_closed",
            published=self.stats.published,
            spooled=self.stats.spooled,
            dropped=self.stats.dropped,
            errors=self.stats.errors,
            spool_bytes=self._spool.pending_bytes,
        )

    def _recover(self) -> None:
        """Put what a killed process left in the journal in front of the spool.

        Before this process sends anything: those events are older than every event it will
        accept. A crash before ``forget_recovered`` only means they are spooled twice.
        """
        try:
            records = self._journal.recover()
            if records:
                kept = self._to_spool(records, front=True)
                log.info("journal_recovered", events=len(records), spooled=kept)
            self._journal.forget_recovered()
        except (OSError, ValueError):  # a damaged journal must not stop delivery
            log.exception("journal_recovery_failed", directory=str(self._journal.directory))

    def _to_spool(self, records: Sequence[SpoolRecord], *, front: bool = False) -> int:
        """Spool records (in front of what is there, or behind); what does not fit is dropped,
        and counted and logged as such. Returns how many were kept."""
        kept = (self._spool.prepend if front else self._spool.append)(records)
        self.stats.spooled += kept
        self._drop(len(records) - kept)
        return kept

    async def _intake(self) -> None:
        to_spool: list[SpoolRecord] = []
        fresh = self._fresh_in
        since = time.perf_counter()
        while self._inbox:
            since = await _breathe(since)
            record = self._encode(self._inbox.popleft())
            if (
                to_spool
                or not self._spool.is_empty()
                or len(self._queue) >= self._config.memory_events
            ):
                to_spool.append(record)
            else:
                self._queue.append(_Queued(record))
                self._fresh_in += 1
        if self._fresh_in > fresh:
            self._arm_journal()
        if to_spool:
            self._write_journal()  # nothing on disk may outlive an older event of its session
            self._to_spool(to_spool)

    def _arm_journal(self) -> None:
        """Journal what waits in memory half a durability window from now."""
        if self._journal_due is None and self._loop is not None:
            self._journal_due = self._loop.call_later(
                self._config.durability_window_ms / 2000, self._write_journal
            )

    def _write_journal(self) -> None:
        """Journal the queue's unacknowledged, unjournaled events in one write and one fsync."""
        self._journal_due = None
        start = max(self._journaled, self._fresh_acked)
        if start >= self._fresh_in:
            return
        head = itertools.islice(
            self._queue, start - self._fresh_acked, self._fresh_in - self._fresh_acked
        )
        try:
            self._journal.write([q.record for q in head], self._fresh_in)
        except OSError:
            log.exception("journal_write_failed", events=self._fresh_in - start)
            self._arm_journal()  # try again, even if no event comes in to arm it
            return
        self._journaled = self._fresh_in

    def _drop(self, count: int) -> None:
        if count:
            self.stats.dropped += count
            log.error(
                "events_dropped",
                count=count,
                reason="spool full",
                spool_max_bytes=self._spool.max_bytes,
                dropped_total=self.stats.dropped,
            )

    def _refill(self) -> None:
        room = self._config.memory_events - len(self._queue)
        if room > 0 and self._spool.has_unread():
            read = self._spool.read(min(room, self._config.batch_events))
            self._queue.extend(_Queued(r, p) for p, r in read)

    def _doing(self, phase: str) -> None:
        self._phase, self._phase_since = phase, time.monotonic()

    async def _send(self, work: asyncio.Event) -> None:
        producer: AIOKafkaProducer | None = None
        down_since: float | None = None
        pause = self._config.retry_pause_s
        try:
            while True:
                self._refill()
                if not self._queue:
                    if self._taken_in:
                        return
                    self._doing("idle")
                    await work.wait()
                    work.clear()
                    continue
                batch = list(itertools.islice(self._queue, self._config.batch_events))
                try:
                    if producer is None:
                        self._doing("connecting")
                        producer = await self._within_deadline(self._connect())
                    self._doing(f"publishing {len(batch)} events")
                    await self._within_deadline(self._publish(producer, batch))
                except (KafkaError, OSError, TimeoutError) as exc:
                    self.stats.errors += 1
                    if down_since is None:
                        down_since = time.monotonic()
                        log.warning(
                            "kafka_unavailable",
                            error=str(exc) or type(exc).__name__,
                            during=self._phase,
                            backlog=len(self._queue),
                        )
                    await self._discard(producer)
                    producer = None
                    self._doing("pausing after a failure")
                    await asyncio.sleep(pause)
                    pause = min(2 * pause, self._config.max_retry_pause_s)
                    continue
                pause = self._config.retry_pause_s
                if down_since is not None:
                    log.info("kafka_available", down_s=round(time.monotonic() - down_since, 1))
                    down_since = None
                for _ in batch:
                    self._queue.popleft()
                self._fresh_acked += sum(q.spooled_at is None for q in batch)
                try:
                    self._journal.trim(self._fresh_acked)
                except OSError:  # kept segments are only sent twice after a crash
                    log.exception("journal_trim_failed")
                spooled = [q.spooled_at for q in batch if q.spooled_at is not None]
                if spooled:
                    self._spool.commit(spooled[-1])
                self.stats.published += len(batch)
        finally:
            await self._discard(producer)

    async def _within_deadline(self, step: Awaitable[T]) -> T:
        """``step``, or TimeoutError after twice the client's request timeout: the client's own
        timeouts have passed by then, so it is stuck rather than slow."""
        return await asyncio.wait_for(step, 2 * self._config.request_timeout_ms / 1000)

    async def _connect(self) -> AIOKafkaProducer:
        producer = kafka_producer(
            self._bootstrap,
            security=self._security,
            compression=self._config.compression,
            linger_ms=self._config.linger_ms,
            request_timeout_ms=self._config.request_timeout_ms,
        )
        try:
            await producer.start()
        except BaseException:
            await self._discard(producer)
            raise
        return producer

    @staticmethod
    async def _publish(producer: AIOKafkaProducer, batch: list[_Queued]) -> None:
        """Send the batch and wait for its acknowledgements. A topic the broker does not have
        is a failure like a broker out of reach, named: aiokafka waits for it a request
        timeout long, logging a warning ten times a second, and says only that it timed out."""
        wanted = {q.record.topic for q in batch}
        if missing := wanted - producer.client.cluster.topics():
            await producer.client.force_metadata_update()
            if missing := wanted - producer.client.cluster.topics():
                raise KafkaError(
                    f"the broker has no topic {', '.join(sorted(missing))}: create the topics "
                    "(`tstore create-topics`, or a projector's first start)"
                )
        deliveries = []
        since = time.perf_counter()
        for q in batch:
            since = await _breathe(since)
            deliveries.append(await producer.send(q.record.topic, q.record.value, key=q.record.key))
        await asyncio.gather(*deliveries)

    async def _discard(self, producer: AIOKafkaProducer | None) -> None:
        """Stop a client, within what is left of a close's deadline once closing: a bot that
        gave ``close`` 0.5 s waited 5.5 s on a frozen broker."""
        if producer is not None:
            limit_s = _STOP_S
            if self._closing:
                limit_s = min(limit_s, max(0.0, self._close_by - time.monotonic()))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), limit_s)
