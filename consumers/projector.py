"""The projector: a consumer group that projects the event topics into the read model.

Each batch goes through small steps, each usable alone: ``decode`` (bytes to events, rejecting
what is not a valid event), ``project`` (events to rows per table), ``write`` (one insert per
table, each with a deterministic deduplication token), ``dead_letter`` (rejects to
the dead-letter topic, acknowledged) and only then ``commit``. Committing last means a crash
replays the batch rather than losing it; the token makes ClickHouse refuse a replayed insert
with the same boundaries, and the tables' versioned merge absorbs any other replay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata

from consumers.metrics import ProjectorMetrics
from consumers.projections import ProjectedRows
from consumers.projections.source import SourcePosition
from consumers.storage.clickhouse import Store
from consumers.topics_admin import MAX_MESSAGE_BYTES
from producers.kafka import kafka_producer
from schemas import DecodeError, EventCodec, Topics
from schemas.models import Event

log = structlog.get_logger(__name__)

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass(frozen=True)
class Rejected:
    """A record that is not a valid event, with why and where it was."""

    record: ConsumerRecord[bytes, bytes]
    reason: str
    detail: str


@dataclass
class Decoded:
    events: list[tuple[Event, SourcePosition]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def decode(
    records: Iterable[ConsumerRecord[bytes, bytes]], codec: EventCodec, topics: Topics
) -> Decoded:
    batch = Decoded()
    for record in records:
        try:
            event = codec.decode(record.value or b"")
        except DecodeError as exc:
            batch.rejected.append(Rejected(record, exc.reason, exc.detail))
            continue
        if topics.for_event(event) != record.topic:
            detail = f"{type(event).__name__} belongs on {topics.for_event(event)}"
            batch.rejected.append(Rejected(record, "wrong-topic", detail))
            continue
        batch.events.append((event, SourcePosition(record.topic, record.partition, record.offset)))
    return batch


def project(events: Iterable[tuple[Event, SourcePosition]]) -> ProjectedRows:
    rows = ProjectedRows()
    for event, source in events:
        rows.add(event, source)
    return rows


def dedup_token(table: str, records: Records, generation: int) -> str:
    """The same partition ranges into the same table and generation always give the same token:
    table, then topic:partition:first-last of every partition in the batch, then generation."""
    ranges = ",".join(
        f"{tp.topic}:{tp.partition}:{batch[0].offset}-{batch[-1].offset}"
        for tp, batch in sorted(
            records.items(), key=lambda item: (item[0].topic, item[0].partition)
        )
        if batch
    )
    return f"{table}|{ranges}|g{generation}"


def next_offsets(records: Records) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit once a poll's records are safely handled: one past the last."""
    return {
        tp: OffsetAndMetadata(batch[-1].offset + 1, "") for tp, batch in records.items() if batch
    }


def dead_letter_headers(rejected: Rejected) -> list[tuple[str, bytes]]:
    record = rejected.record
    return [
        ("tstore-reason", rejected.reason.encode()),
        ("tstore-detail", rejected.detail[:2000].encode()),
        ("tstore-source-topic", record.topic.encode()),
        ("tstore-source-partition", str(record.partition).encode()),
        ("tstore-source-offset", str(record.offset).encode()),
    ]


@dataclass
class ProjectorStats:
    events: int = 0
    rows: int = 0
    rejected: int = 0
    batches: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time spent in each step (fetch, decode, write, dead_letters, commit)."""

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
        max_batch: int = 50_000,
        max_wait_ms: int = 200,
        session_timeout_ms: int = 10_000,
        metrics: ProjectorMetrics | None = None,
    ) -> None:
        self.topics = topics
        self.store = store
        self.codec = codec or EventCodec()
        self.generation = generation
        self.stats = ProjectorStats()
        self.metrics = metrics or ProjectorMetrics()
        self._max_batch = max_batch
        self._max_wait_ms = max_wait_ms
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
        )
        self._dead_letters: AIOKafkaProducer = kafka_producer(
            bootstrap, max_request_size=MAX_MESSAGE_BYTES + 1024
        )

    async def start(self) -> None:
        await asyncio.to_thread(self.store.migrate)
        await self._dead_letters.start()
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._dead_letters.stop()

    async def _gather(self) -> Records:
        """Fetch until the batch holds ``max_batch`` records or ``max_wait_ms`` has passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait_ms / 1000
        records: Records = {}
        count = 0
        while count < self._max_batch and (left_s := deadline - loop.time()) > 0:
            fetched = await self._consumer.getmany(
                timeout_ms=max(1, int(left_s * 1000)), max_records=self._max_batch - count
            )
            for tp, batch in fetched.items():
                records.setdefault(tp, []).extend(batch)
                count += len(batch)
        return records

    async def step(self) -> int:
        """Gather one batch and fully handle it: decode, project, write, dead-letter, commit."""
        with self.stats.timing("fetch"):
            records = await self._gather()
        self.metrics.fetched(
            min((batch[0].timestamp for batch in records.values() if batch), default=None)
        )
        if not records:
            return 0
        with self.stats.timing("decode"):
            decoded = decode(
                (r for batch in records.values() for r in batch), self.codec, self.topics
            )
            rows = project(decoded.events)
        with self.stats.timing("write"):
            await asyncio.to_thread(self._write, rows, records)
        self.stats.events += len(decoded.events)
        self.metrics.events.inc(len(decoded.events))
        handled = sum(len(batch) for batch in records.values())
        self.metrics.batch_size.observe(handled)
        with self.stats.timing("dead_letters"):
            await self._send_to_dead_letters(decoded.rejected)
        try:
            with self.stats.timing("commit"):
                await self._consumer.commit(next_offsets(records))
        except CommitFailedError as exc:
            # The group rebalanced while the batch was written: its new owner replays it from
            # the last commit, and the tokens and versioned merges absorb the replay.
            log.warning("commit_failed_after_rebalance", error=str(exc), records=handled)
        self.stats.batches += 1
        for tp, batch in records.items():
            self.metrics.partition_lag(tp, self._consumer.highwater(tp), batch[-1].offset + 1)
        return handled

    def _write(self, rows: ProjectedRows, records: Records) -> None:
        for table, table_rows in rows.by_table().items():
            token = dedup_token(table, records, self.generation)
            with self.metrics.insert_seconds.labels(table).time():
                self.store.insert(table, table_rows, dedup_token=token)
            self.stats.rows += len(table_rows)

    async def _send_to_dead_letters(self, rejected: list[Rejected]) -> None:
        deliveries = []
        for reject in rejected:
            log.error(
                "event_rejected",
                reason=reject.reason,
                detail=reject.detail[:500],
                topic=reject.record.topic,
                partition=reject.record.partition,
                offset=reject.record.offset,
            )
            deliveries.append(
                await self._dead_letters.send(
                    self.topics.dead_letters,
                    reject.record.value,
                    key=reject.record.key,
                    headers=dead_letter_headers(reject),
                )
            )
        await asyncio.gather(*deliveries)
        self.stats.rejected += len(rejected)
        self.metrics.rejected.inc(len(rejected))

    async def catch_up(self, limit_s: float = 60.0) -> None:
        """Project until every assigned partition is read up to the end it had when called.

        Everything acknowledged by the broker before the call is in the store afterwards.
        """
        ends: dict[TopicPartition, int] = {}
        try:
            async with asyncio.timeout(limit_s):
                while not ends or not await self._reached(ends):
                    await self.step()
                    assigned = self._consumer.assignment()
                    if assigned and set(ends) != assigned:
                        ends = await self._consumer.end_offsets(list(assigned))
        except TimeoutError:
            raise TimeoutError(
                f"projector did not reach end offsets {ends} in {limit_s}s"
            ) from None

    async def _reached(self, ends: dict[TopicPartition, int]) -> bool:
        return all([await self._consumer.position(tp) >= end for tp, end in ends.items()])

    async def run(self, stop: asyncio.Event) -> None:
        """Project until ``stop`` is set; the batch in hand is finished and committed first."""
        while not stop.is_set():
            await self.step()

    async def __aenter__(self) -> Projector:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
