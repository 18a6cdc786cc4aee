"""The projector: a consumer group that projects the event topics into the read model.

Each batch goes through the steps of ``consumers.steps``: gather, decode (rejecting what is not
a valid event), project (``consumers.projections``), write (one insert per table with a
deterministic deduplication token), dead letters (acknowledged) and only then commit.
Committing last means a crash replays the batch rather than losing it; the token makes
ClickHouse refuse a replayed insert with the same boundaries, and the tables' versioned merge
absorbs any other replay.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import polars as pl
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError

from consumers.broker_silence import BrokerSilence
from consumers.gc_pause import collect_if_due, cyclic_gc_paused
from consumers.metrics import BLIND_AFTER_S, ProjectorMetrics
from consumers.projections import PROJECTIONS, project
from consumers.steps import Records
from consumers.steps.bound import bound
from consumers.steps.commit import commit
from consumers.steps.dead_letters import DeadLetters
from consumers.steps.decode import Decoded, decode
from consumers.steps.gather import gather
from consumers.steps.write import write
from consumers.storage.clickhouse import Store
from consumers.topics_admin import MAX_MESSAGE_BYTES, event_partitions
from producers.kafka import PLAINTEXT, KafkaSecurity, started
from schemas import EventCodec, Topics

log = structlog.get_logger(__name__)

Rows = dict[str, pl.DataFrame]
"""A batch's rows, by projection."""

PIPELINE_DEPTH = 3
"""Batches in flight behind the one being gathered: decoded (each in a thread of its own)
while the one before them is written. Two left the stages idle whenever one batch took
longer than the others (about a tenth slower); four gained nothing more."""


def group_for(base_group: str, store: Store, generation: int) -> str:
    """Each generation of each store is projected by its own consumer group, with its own
    offsets: a store made anew reads the topics from their start (see ``Store.identity``)."""
    scoped = f"{base_group}.{store.identity}" if store.identity else base_group
    return f"{scoped}.g{generation}"


@dataclass
class ProjectorStats:
    events: int = 0
    rows: int = 0
    rejected: int = 0
    batches: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time in each stage: ``fetch`` (gathering), ``decode`` (with projection),
    ``write`` (the inserts), and ``waiting``: the loop waiting for room in the pipeline.
    The stages overlap, so the times add up to more than the time elapsed."""

    @contextmanager
    def timing(self, step: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - began


class Projector:
    def __init__(
        self,
        *,
        bootstrap: str,
        topics: Topics,
        group_id: str,
        store: Store,
        codec: EventCodec | None = None,
        generation: int = 1,
        projections: Collection[str] = PROJECTIONS,
        limits: dict[TopicPartition, int] | None = None,
        send_dead_letters: bool = True,
        on_batch: Callable[[Records, Rows], None] | None = None,
        on_written: Callable[[Rows], None] | None = None,
        max_batch: int = 50_000,
        max_wait_ms: int = 200,
        session_timeout_ms: int = 10_000,
        metrics: ProjectorMetrics | None = None,
        security: KafkaSecurity = PLAINTEXT,
        hurry_after_s: float | None = None,
    ) -> None:
        self.topics = topics
        self.group_id = group_id
        self.store = store
        self.codec = codec or EventCodec()
        self.generation = generation
        self.projections = frozenset(projections)
        self.limits = limits or {}
        """Per partition, the offset to stop before: a replay up to a point in time."""
        self._send_dead_letters = send_dead_letters
        self._on_batch = on_batch
        self._on_written = on_written
        """Told each batch's rows of ``projections`` once they are written (on the loop)."""
        self.stats = ProjectorStats()
        self.metrics = metrics or ProjectorMetrics()
        self._max_batch = max_batch
        self._max_wait_ms = max_wait_ms
        self._hurry_after_s = hurry_after_s
        """A lag from which batches are written at the engine's normal priority, whatever the
        connection's (``Store.insert``'s ``hurry``); None: never (a rebuild's lag is that of
        the past it replays)."""
        self._consumer = AIOKafkaConsumer(
            *topics.events,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 3),
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
            fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
            **security.client_options(),
        )
        self._dead_letters = DeadLetters(bootstrap, topics.dead_letters, security)
        self._bootstrap, self._security = bootstrap, security
        self._in_flight: deque[asyncio.Task[None]] = deque()
        """The batches handed over by the last steps, oldest first, until committed."""
        self._silence = BrokerSilence(generation)
        self._caught_up = False

    async def start(self) -> None:
        await asyncio.to_thread(self.store.migrate)
        await started(self._dead_letters, self._bootstrap, self._security)
        try:
            await self._consumer.start()
        except BaseException:  # a broker out of reach, or a SIGTERM meanwhile: no stop follows
            await self._dead_letters.stop()
            raise
        self._silence.started()
        log.info("projector_started", generation=self.generation, group=self.group_id)

    async def stop(self) -> None:
        try:
            await self.flush()
        finally:
            await self._stop_consumer()
            await self._dead_letters.stop()
            self.metrics.forget(self.generation)
            log.info("projector_closed", generation=self.generation, group=self.group_id)

    async def _stop_consumer(self) -> None:
        """aiokafka's fetcher, waiting to retry a broker that is gone, raises the
        ``CancelledError`` of its own retry out of ``stop``; that one is no cancellation of
        ours, and the consumer is stopped all the same."""
        try:
            await self._consumer.stop()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            log.info("consumer_stopped_while_retrying", generation=self.generation)

    async def step(self) -> int:
        """Gather one batch and hand it over to the pipeline: it is decoded and projected while
        the batch before it is written, then written, dead-lettered and committed.

        At most ``PIPELINE_DEPTH`` batches are in flight, and each is written and committed
        only after the one before it, so commits stay in offset order; ``flush`` finishes them.
        """
        try:
            return await self._step()
        finally:
            self.metrics.stepped(self.generation)

    async def _step(self) -> int:
        with self.stats.timing("fetch"):
            records = await gather(
                self._consumer, max_batch=self._max_batch, max_wait_ms=self._max_wait_ms
            )
        fetched_any = bool(records)
        heard = self._silence.fetched(self._consumer, fetched_any)
        records = self._bounded(records)
        oldest = min((batch[0].timestamp for batch in records.values()), default=None)
        self.metrics.fetched(self.generation, oldest, heard)
        if fetched_any:
            self._note_progress(fetched_any=True)
        if oldest is None:
            await self.flush()
            self._note_progress(fetched_any=False)
            await self._note_partition_lag()
            return 0
        with self.stats.timing("waiting"):
            while len(self._in_flight) >= PIPELINE_DEPTH:
                await self._in_flight.popleft()
        before = self._in_flight[-1] if self._in_flight else None
        self._in_flight.append(asyncio.create_task(self._finish(records, oldest, before)))
        collect_if_due()
        return sum(len(batch) for batch in records.values())

    async def flush(self) -> None:
        """Wait until every batch in flight is written and committed; raise what one raised."""
        in_flight, self._in_flight = self._in_flight, deque()
        with self.stats.timing("waiting"):
            outcomes = await asyncio.gather(*in_flight, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _finish(
        self, records: Records, oldest_ms: int, before: asyncio.Task[None] | None
    ) -> None:
        with self.stats.timing("decode"):
            decoded, rows = await asyncio.to_thread(
                _decode_and_project, records, self.codec, self.topics
            )
        if self._on_batch is not None:
            self._on_batch(records, rows)
        if before is not None:
            await before  # raises what the batch before raised: this one is not committed
        with self.stats.timing("write"):
            self.stats.rows += await asyncio.to_thread(
                write,
                self.store,
                rows,
                records,
                generation=self.generation,
                projections=self.projections,
                metrics=self.metrics,
                hurry=lambda: self.hurrying,
            )
        self.metrics.written(self.generation, oldest_ms)
        if self._on_written is not None:
            self._on_written({t: r for t, r in rows.items() if t in self.projections})
        if self._send_dead_letters:
            await self._dead_letters.send(decoded.rejected)
        await self._silence.waiting(commit(self._consumer, records), "a commit")
        handled = sum(len(batch) for batch in records.values())
        self.stats.events += decoded.events
        self.stats.rejected += len(decoded.rejected)
        self.stats.batches += 1
        self.metrics.events.inc(decoded.events)
        self.metrics.rejected.inc(len(decoded.rejected))
        self.metrics.batch_size.observe(handled)
        assigned = self.held  # a rebalance may have taken some away
        for tp, batch in records.items():
            if tp in assigned:
                self.metrics.partition_lag(
                    self.generation, tp, self._consumer.highwater(tp), batch[-1].offset + 1
                )

    def _note_progress(self, fetched_any: bool) -> None:
        """Log reaching the end of the topics (after the start, or after falling behind by
        ``BLIND_AFTER_S``): an operator sees when a projector is current, not only that it runs."""
        lag_s = self.metrics.lag_of(self.generation)
        if fetched_any and lag_s >= BLIND_AFTER_S:
            self._caught_up = False
        elif not fetched_any and not self._caught_up and lag_s == 0.0:
            self._caught_up = True
            log.info("caught_up", generation=self.generation, group=self.group_id)

    async def _note_partition_lag(self) -> None:
        """Set the offset lag of every partition held, after a fetch that brought nothing.

        Only of partitions the broker gave a high watermark for: their position is known, so
        asking for it does not wait on the broker (it would, up to the request timeout, for a
        partition whose offset is being reset), but that wait is bounded all the same."""
        lags: dict[TopicPartition, tuple[int, int]] = {}
        for tp in self.held:
            if tp not in self._consumer.assignment():  # taken away while a position was asked
                continue
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            with suppress(IllegalStateError, TimeoutError):  # taken away, or being reset
                position = await asyncio.wait_for(self._consumer.position(tp), 0.5)
                lags[tp] = (highwater, position)
        self.metrics.held_partitions(self.generation, lags)

    def _bounded(self, records: Records) -> Records:
        """Drop records at or past the limits, and stop fetching partitions that reached theirs."""
        if not self.limits:
            return records
        reached = [
            tp
            for tp, batch in records.items()
            if tp in self.limits and batch[-1].offset + 1 >= self.limits[tp]
        ]
        if reached:
            self._consumer.pause(*reached)
        return bound(records, self.limits)

    @property
    def hurrying(self) -> bool:
        """Whether batches are written at the engine's normal priority now (``hurry_after_s``)."""
        after = self._hurry_after_s
        return after is not None and self.metrics.lag_of(self.generation) >= after

    @property
    def held(self) -> set[TopicPartition]:
        """The partitions the group assigns this projector now."""
        return set(self._consumer.assignment())

    async def positions(self) -> dict[TopicPartition, int]:
        """The next offset to handle in every assigned partition."""
        return {tp: await self._consumer.position(tp) for tp in self.held}

    async def catch_up(self, limit_s: float = 60.0) -> None:
        """Project until every partition of the topics is read up to the end it had when
        called (or up to its limit): everything the broker acknowledged before the call is in
        the store afterwards.

        It waits until it holds every partition, as a projector alone in its group does once
        the group settles. Reading only the partitions held at the call returned early when
        another member had just left: the group had not rebalanced yet, and the partitions
        that member had held were left unread. Beside other members it times out."""
        ends = await self._ends()
        try:
            async with asyncio.timeout(limit_s):
                with cyclic_gc_paused():
                    while not ends or not await self._reached(ends):
                        await self.step()
                        ends = ends or await self._ends()
                    await self.flush()
        except TimeoutError:
            held = sorted(f"{tp.topic}[{tp.partition}]" for tp in self.held)
            raise TimeoutError(
                f"projector did not reach end offsets {ends} in {limit_s}s, holding "
                f"{', '.join(held) or 'no partition'}: another member of group "
                f"{self.group_id} may hold the rest"
            ) from None

    async def _ends(self) -> dict[TopicPartition, int]:
        """The end of every partition of the topics, or of its limit if sooner; empty while
        the consumer does not know every topic's partitions yet."""
        parts = event_partitions(self._consumer, self.topics)
        if parts is None:
            return {}
        ends = await self._consumer.end_offsets(parts)
        return {tp: min(end, self.limits.get(tp, end)) for tp, end in ends.items()}

    async def _reached(self, ends: dict[TopicPartition, int]) -> bool:
        """Whether this projector holds every partition of ``ends``, each read up to its end."""
        try:
            return set(ends) == self.held and all(
                [await self._consumer.position(tp) >= end for tp, end in ends.items()]
            )
        except IllegalStateError:
            return False

    async def run(self, stop: asyncio.Event, *, check_every_s: float = 5.0) -> None:
        """Project until ``stop`` is set; the batch in hand is finished and committed first.

        Also returns once a cut-over, made by a rebuild in any process, left readers shown none
        of this projector's generation: writing it on would serve nobody.
        """
        checked = time.monotonic()
        with cyclic_gc_paused():
            while not stop.is_set():
                await self.step()
                if time.monotonic() - checked >= check_every_s:
                    checked = time.monotonic()
                    if await asyncio.to_thread(self.superseded):
                        log.info("generation_superseded", generation=self.generation)
                        break
            await self.flush()

    def superseded(self) -> bool:
        shown = self.store.generations.current()
        return not any(shown.get(p) == self.generation for p in self.projections)

    async def __aenter__(self) -> Projector:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _decode_and_project(
    records: Records, codec: EventCodec, topics: Topics
) -> tuple[Decoded, Rows]:
    decoded = decode(records, codec, topics)
    return decoded, project(decoded.frames)
