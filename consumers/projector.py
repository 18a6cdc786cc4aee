"""The projector: a consumer group that turns turn events into transcript rows.

Each batch goes through small steps, each usable alone: ``decode`` (bytes to events, refusing
what is not an event), ``project`` (events to rows), ``write`` (rows to the store), and only then
``commit`` (offsets to Kafka). Committing after the write means a crash replays the batch rather
than losing it; the table's versioned merge absorbs the replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from consumers.projections.transcripts import SourcePosition, TranscriptRow, transcript_row
from consumers.storage.clickhouse import TranscriptStore
from schemas import DecodeError, EventCodec, Topics, TurnStarted, TurnStopped

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Rejected:
    """A record that is not a valid event, with why and where it was."""

    source: SourcePosition
    reason: str
    detail: str


@dataclass(frozen=True)
class Decoded:
    events: list[tuple[TurnStarted | TurnStopped, SourcePosition]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def decode(records: Iterable[ConsumerRecord[bytes, bytes]], codec: EventCodec) -> Decoded:
    batch = Decoded()
    for record in records:
        source = SourcePosition(record.topic, record.partition, record.offset)
        try:
            event = codec.decode(record.value or b"")
        except DecodeError as exc:
            batch.rejected.append(Rejected(source, exc.reason, exc.detail))
            continue
        if isinstance(event, TurnStarted | TurnStopped):
            batch.events.append((event, source))
        else:
            batch.rejected.append(
                Rejected(source, "wrong-topic", f"{type(event).__name__} on a turn-events topic")
            )
    return batch


def project(
    events: Iterable[tuple[TurnStarted | TurnStopped, SourcePosition]],
) -> list[TranscriptRow]:
    return [transcript_row(event, source) for event, source in events]


def next_offsets(
    records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit once a poll's records are safely written: one past the last."""
    return {
        tp: OffsetAndMetadata(batch[-1].offset + 1, "") for tp, batch in records.items() if batch
    }


@dataclass
class ProjectorStats:
    events: int = 0
    rows: int = 0
    rejected: int = 0
    batches: int = 0


class Projector:
    def __init__(
        self,
        *,
        bootstrap: str,
        topics: Topics,
        group_id: str,
        store: TranscriptStore,
        codec: EventCodec | None = None,
        max_batch: int = 50_000,
        max_wait_ms: int = 200,
    ) -> None:
        self.topics = topics
        self.store = store
        self.codec = codec or EventCodec()
        self.stats = ProjectorStats()
        self._max_batch = max_batch
        self._max_wait_ms = max_wait_ms
        self._consumer = AIOKafkaConsumer(
            topics.turn_events,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )

    async def start(self) -> None:
        await asyncio.to_thread(self.store.migrate)
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def step(self) -> int:
        """Poll once and fully handle what came: decode, project, write, commit."""
        records = await self._consumer.getmany(
            timeout_ms=self._max_wait_ms, max_records=self._max_batch
        )
        if not records:
            return 0
        batch = decode((r for rs in records.values() for r in rs), self.codec)
        for rejected in batch.rejected:
            log.error(
                "event_rejected",
                reason=rejected.reason,
                detail=rejected.detail,
                topic=rejected.source.topic,
                partition=rejected.source.partition,
                offset=rejected.source.offset,
            )
        rows = project(batch.events)
        await asyncio.to_thread(self.store.insert, rows)
        await self._consumer.commit(next_offsets(records))
        self.stats.events += len(batch.events)
        self.stats.rows += len(rows)
        self.stats.rejected += len(batch.rejected)
        self.stats.batches += 1
        return len(batch.events) + len(batch.rejected)

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
