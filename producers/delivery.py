"""Getting events from the bot to Kafka without the bot ever waiting.

Everything that can be slow (Avro encoding, the Kafka client, fsync) runs in a thread with an
event loop of its own; the bot's loop only appends to a deque. In that thread:

- ``_intake`` moves submitted events into a bounded in-memory queue, or to the on-disk spool
  when the queue is full or the spool still holds anything (so nothing overtakes what was
  spooled before it, which keeps every session in order).
- ``_send`` publishes the queue head in batches, refilling the queue from the spool, and drops a
  batch from the queue (and commits it in the spool) only once Kafka has acknowledged it. When
  an attempt fails, whatever the error, the batch stays at the head and is retried after a
  pause on a fresh client (``kafka_attempts.py``). An event Kafka will never take is dropped
  from the head instead (``refusals.py``).
- ``close`` gives the queue a deadline to drain; what is still only in memory then is put in
  front of the spool, so the next process delivers it first. If the sender is still busy then,
  the log says with what and since when.
- What waits in the memory queue for Kafka's acknowledgement longer than half the durability
  window is written to the journal (``journal.py``), so that a killed process loses only what
  it accepted within the window. A new process puts the journal in front of the spool first.
- A disk that refuses writes drops what was to be spooled (counted, said sparsely:
  ``sparse_log.py``) and leaves the journal behind; delivery from memory goes on. A spool that
  could not be used at all is tried again every ``spool_retry_s``; once it opens, it gets its
  journal, and what a killed process left in that journal goes in front of it.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaProducer

from producers.delivery_config import DeliveryConfig
from producers.frames import SpoolRecord
from producers.gil import breathe
from producers.journal import Journal
from producers.kafka import MAX_EVENT_BYTES, PLAINTEXT, KafkaSecurity
from producers.kafka_attempts import STOP_S, Attempts, Retries, give_up
from producers.refusals import Outcome, fitting, log_refused
from producers.sparse_log import SparseLog
from producers.spool import Spool, SpoolPosition
from producers.spool_writes import SpoolWrites
from schemas import Event

__all__ = ["Delivery", "DeliveryConfig", "DeliveryStats"]

log = structlog.get_logger(__name__)


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
        self._spool = spool
        self._encode = encode
        self._config = config or DeliveryConfig()
        self._attempts = Attempts(bootstrap, security, self._config)
        self._inbox: deque[Event] = deque()
        self._queue: deque[_Queued] = deque()
        self._journal = Journal(spool.directory / "journal" if spool.usable else None)
        self._fresh_in = self._fresh_acked = self._journaled = 0
        """Counts of events that entered the queue from the inbox, were acknowledged, were
        journaled. Those entries are always the queue's head: they enter it only while the
        spool is empty, and the spool's records only after them."""
        self._journal_due: asyncio.TimerHandle | None = None
        self._spool_retry_at = time.monotonic() + self._config.spool_retry_s
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
        self._retries = Retries(self._config)
        self._spool_writes = SpoolWrites(spool, self.stats)
        self._journal_failing = SparseLog(
            "journal_write_failed", level="warning", ended_event="journal_write_recovered"
        )
        self._unencodable = SparseLog("event_unencodable")
        self._bookkeeping = SparseLog("delivery_bookkeeping_failed", level="warning")
        """Committing the spool's cursor or trimming the journal failed: the events concerned
        are only sent twice after a restart."""
        own = (self._journal_failing, self._unencodable, self._bookkeeping)
        self._sparse_logs = (*self._spool_writes.logs, *own)
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
            self._tick_logs()
            self._reopen_spool()
            work.set()
            await asyncio.sleep(0)  # the sender's turn, even while the bot keeps submitting
        await self._finish(sender, work)

    async def _finish(self, sender: asyncio.Task[None], work: asyncio.Event) -> None:
        await self._intake()
        self._taken_in = True
        work.set()
        left_s = self._close_by - time.monotonic()
        try:
            await asyncio.wait_for(sender, max(left_s / 2, left_s - 0.5))
        except TimeoutError:
            pass
        except Exception:  # the sender catches everything; whatever escaped it, spool the rest
            log.exception("delivery_sender_failed")
        if self._queue:
            log.warning(
                "delivery_unfinished",
                sender=self._phase,
                for_s=round(time.monotonic() - self._phase_since, 1),
                queued=len(self._queue),
                errors=self.stats.errors,
            )
        unsent = [q.record for q in self._queue if q.spooled_at is None]
        if unsent:
            self._reopen_spool(now=True)  # the last chance to keep them
        self._queue.clear()
        spooled = self._spool_writes.write(unsent, front=True)
        if self._journal_due is not None:
            self._journal_due.cancel()
        keep = spooled < len(unsent)
        if keep:
            log.warning("journal_kept", events=len(unsent), reason="the spool failed")
        try:
            self._journal.close(keep=keep)
        except OSError as exc:  # what it holds is spooled or kept: a restart sends it twice
            log.warning("journal_close_failed", error=str(exc))
        for sparse in self._sparse_logs:
            sparse.flush()
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

        Before this process sends anything, or when a spool it could not use at the start
        opens: those events are older than every event it accepts, and of other sessions
        (a session is one process's: a new producer numbers its events from 0), so that they
        may follow what it already sent. A crash before ``forget_recovered`` only means they
        are spooled twice.
        """
        try:
            records = self._journal.recover()
            kept = self._spool_writes.write(records, front=True)
            if records:
                log.info("journal_recovered", events=len(records), spooled=kept)
            if kept == len(records):  # else the journal keeps them for a later process
                self._journal.forget_recovered()
        except (OSError, ValueError):  # a damaged journal must not stop delivery
            log.exception("journal_recovery_failed", directory=str(self._journal.directory))

    def _reopen_spool(self, *, now: bool = False) -> None:
        """Try an unusable spool again, if it is time (see ``DeliveryConfig.spool_retry_s``)
        or ``now``. The journal starts with every event the queue holds unacknowledged: none
        of them was safe from a kill until then."""
        if self._spool.usable or not (now or time.monotonic() >= self._spool_retry_at):
            return
        self._spool_retry_at = time.monotonic() + self._config.spool_retry_s
        if not self._spool.reopen():
            return
        log.info("spool_available", directory=str(self._spool.directory))
        self._journal = Journal(self._spool.directory / "journal")
        self._journaled = self._fresh_acked
        self._recover()
        self._arm_journal()

    def _tick_logs(self) -> None:
        """Let the sparse logs say what they counted since their last line, if it is time."""
        for sparse in self._sparse_logs:
            sparse.tick()

    async def _intake(self) -> None:
        to_spool: list[SpoolRecord] = []
        fresh = self._fresh_in
        since = time.perf_counter()
        while self._inbox:
            since = await breathe(since)
            try:
                record = self._encode(self._inbox.popleft())
            except Exception as exc:  # the bot's events are validated; this must not stop us
                self.stats.dropped += 1
                self._unencodable.count(error=f"{type(exc).__name__}: {exc}")
                continue
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
            self._spool_writes.write(to_spool)

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
        except OSError as exc:
            # The events stay in memory and are delivered when Kafka takes them, only not
            # safe from a kill meanwhile: said once, and when writes go through again.
            self._journal_failing.count(  # counts failed writes
                events=self._fresh_in - start,
                error=str(exc),
                directory=str(self._journal.directory),
            )
            self._arm_journal()  # try again, even if no event comes in to arm it
            return
        self._journal_failing.ended()
        self._journaled = self._fresh_in

    def _refill(self) -> None:
        room = self._config.memory_events - len(self._queue)
        if room > 0 and self._spool.has_unread():
            read = self._spool.read(min(room, self._config.batch_events))
            self._queue.extend(_Queued(r, p) for p, r in read)

    def _doing(self, phase: str) -> None:
        self._phase, self._phase_since = phase, time.monotonic()

    async def _send(self, work: asyncio.Event) -> None:
        """Publish the queue's head until closing leaves it empty. Whatever goes wrong in an
        attempt, whatever its kind, is a failed attempt: the task must outlive it, since
        nothing would deliver the bot's events after it."""
        producer: AIOKafkaProducer | None = None
        try:
            while True:
                try:
                    self._refill()
                    if not self._queue:
                        if self._taken_in:
                            return
                        self._doing("idle")
                        await work.wait()
                        work.clear()
                        continue
                    batch = self._next_batch()
                    if not batch:
                        continue  # its head was refused for good, and dropped
                    if producer is None:
                        self._doing("connecting")
                        producer = await self._attempts.within_deadline(
                            self._attempts.connect(self._discard)
                        )
                    self._doing(f"publishing {len(batch)} events")
                    result = await self._attempts.publish(producer, [q.record for q in batch])
                    if result.refused is not None:  # the client's sequence numbers are off
                        await self._discard(producer)
                        producer = None
                    self._settle(batch, result)
                    if result.failure is not None:
                        raise result.failure
                except Exception as exc:
                    await self._failed(exc, producer)
                    producer = None
        finally:
            await self._discard(producer)

    def _next_batch(self) -> list[_Queued]:
        """The next batch to send: the queue's head, up to the first record too large ever to
        be sent (``MAX_EVENT_BYTES``, what a client built with ``MAX_REQUEST_BYTES`` sends).
        One at the head itself is dropped instead, and the batch is empty."""
        head = list(itertools.islice(self._queue, self._config.batch_events))
        size = fitting([q.record for q in head], MAX_EVENT_BYTES)
        if size == 0:
            self._drop_refused(head[0], "larger than Kafka takes")
        return head[:size]

    def _settle(self, batch: list[_Queued], result: Outcome) -> None:
        """Take the acknowledged head of the batch off the queue, and the record after it if
        Kafka refused it for good; the rest stays for another attempt."""
        acknowledged = batch[: result.acknowledged]
        self._done_with(acknowledged)
        self.stats.published += len(acknowledged)
        if acknowledged or result.refused is not None:
            self._retries.succeeded()
        if result.refused is not None:
            self._drop_refused(batch[result.acknowledged], str(result.refused))

    def _drop_refused(self, head: _Queued, reason: str) -> None:
        """Drop the queue's head, an event Kafka will never take: said, counted, gone."""
        log_refused(head.record, MAX_EVENT_BYTES, reason)
        self._done_with([head])
        self.stats.dropped += 1

    def _done_with(self, head: Sequence[_Queued]) -> None:
        """Take entries off the queue's head for good (acknowledged, or dropped): the journal
        forgets them and the spool commits them."""
        for _ in head:
            self._queue.popleft()
        self._fresh_acked += sum(q.spooled_at is None for q in head)
        spooled = [q.spooled_at for q in head if q.spooled_at is not None]
        try:
            self._journal.trim(self._fresh_acked)
            if spooled:
                self._spool.commit(spooled[-1])
        except OSError as exc:  # kept segments or a stale cursor only send events twice
            self._bookkeeping.count(error=str(exc))

    async def _failed(self, exc: Exception, producer: AIOKafkaProducer | None) -> None:
        """A failed attempt: counted, said if news (``Retries``), the client given up, and a
        pause."""
        self.stats.errors += 1
        pause = self._retries.failed(exc, during=self._phase, backlog=len(self._queue))
        await self._discard(producer)
        self._doing("pausing after a failure")
        await asyncio.sleep(pause)

    async def _discard(self, producer: AIOKafkaProducer | None) -> None:
        """Give a client up, within what is left of a close's deadline once closing: a bot that
        gave ``close`` 0.5 s waited 5.5 s on a frozen broker."""
        if producer is not None:
            limit_s = STOP_S
            if self._closing:
                limit_s = min(limit_s, max(0.0, self._close_by - time.monotonic()))
            await give_up(producer, limit_s)
