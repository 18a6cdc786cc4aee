"""Rebuilding projections: replay the topics into a new generation, verify it, cut readers over.

The live generation is never written: the rebuild writes only its own generation's partitions,
under its own consumer group, so a crash or a cancel leaves the readers' view untouched and the
rebuild resumes from its group's committed offsets. Before readers are cut over the new
generation is checked against what the replay read: every table's rows and a per-session
checksum must match the rows the projection made, or the rebuild stops with a report.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import BrokerResponseError

from consumers.consumer_groups import delete_group
from consumers.gc_pause import cyclic_gc_paused
from consumers.projector import Projector, group_for
from consumers.storage.clickhouse import Store
from consumers.storage.generations import Generation, GenerationError, chosen_projections
from consumers.topics_admin import event_partitions
from consumers.verification import (
    Tally,
    Verification,
    VerificationError,
    refuse_loss,
    tally_topics,
    verify,
)
from producers.kafka import PLAINTEXT, KafkaSecurity
from schemas import Topics

log = structlog.get_logger(__name__)

Progress = Callable[[dict[TopicPartition, int]], None]
"""Told, after every batch, the next offset the rebuild will read in each partition."""
Warm = Callable[[Generation, Callable[[], bool]], None]
"""Fills the caches of a verified generation before it is cut over, until told to stop."""


class Cancellation:
    """A rebuild's cancellation, asked from another task and answered by its replay, which
    stops between two batches; asked once the replay is over, the answer is that it is over
    (``replayed``): the verification, the catch-up and the caches' warm-up take minutes at
    1M sessions, and a task cancelled in the middle of them could leave the store cut over
    while saying it was not."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.replayed = asyncio.Event()


class RebuildCancelledError(GenerationError):
    """The rebuild was asked to stop before its replay ended."""

    def __init__(self, generation: int) -> None:
        super().__init__(
            f"the rebuild of generation {generation} was cancelled before its replay ended: "
            "resume it or discard it"
        )


@dataclass(frozen=True)
class PartitionPlan:
    partition: TopicPartition
    start: int
    target: int
    """Exclusive: the rebuild is done with the partition when it has read up to here."""


@dataclass(frozen=True)
class RebuildPlan:
    generation: int
    projections: tuple[str, ...]
    group_id: str
    until: datetime | None
    partitions: tuple[PartitionPlan, ...]
    resume: bool

    @property
    def events(self) -> int:
        return sum(p.target - p.start for p in self.partitions)

    @property
    def targets(self) -> dict[TopicPartition, int]:
        return {p.partition: p.target for p in self.partitions}

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "projections": list(self.projections),
            "group_id": self.group_id,
            "until": self.until.isoformat() if self.until else None,
            "partitions": [
                [p.partition.topic, p.partition.partition, p.start, p.target]
                for p in self.partitions
            ],
            "resume": self.resume,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RebuildPlan:
        return cls(
            generation=int(data["generation"]),
            projections=tuple(data["projections"]),
            group_id=str(data["group_id"]),
            until=datetime.fromisoformat(data["until"]) if data["until"] else None,
            partitions=tuple(
                PartitionPlan(TopicPartition(t, int(p)), int(start), int(target))
                for t, p, start, target in data["partitions"]
            ),
            resume=bool(data["resume"]),
        )

    def describe(self) -> str:
        verb = "resume" if self.resume else "create"
        ending = (
            f"replay up to {self.until.isoformat()} and keep it frozen (no cut-over)"
            if self.until
            else "replay to the live end, verify, cut readers over, keep projecting live"
        )
        lines = [
            f"{verb} generation {self.generation} for {', '.join(self.projections)}",
            f"consumer group {self.group_id}; {ending}",
            f"{self.events} records to replay:",
        ]
        lines += [
            f"  {p.partition.topic}[{p.partition.partition}]: "
            + (
                f"offsets {p.start} to {p.target - 1}"
                if p.target > p.start
                else f"nothing (offset {p.start})"
            )
            for p in self.partitions
        ]
        return "\n".join(lines)


async def plan_rebuild(
    *,
    bootstrap: str,
    topics: Topics,
    store: Store,
    base_group: str,
    projections: Collection[str],
    until: datetime | None,
    resume: bool,
    security: KafkaSecurity = PLAINTEXT,
) -> RebuildPlan:
    """What a rebuild would do, from the topics' offsets and the generation registry.

    Touches nothing, so it is also the dry run.
    """
    pending = await asyncio.to_thread(store.generations.unfinished)
    if resume and pending is None:
        raise GenerationError("there is no unfinished rebuild to resume")
    if not resume and pending is not None:
        raise GenerationError(
            f"generation {pending.number} is an unfinished rebuild ({pending.state}): "
            "resume it or discard it (--resume or --discard; over HTTP, resume or discard: true)"
        )
    if missing := set(topics.events) - await _existing_topics(bootstrap, security):
        raise GenerationError(f"nothing to replay: no topic {', '.join(sorted(missing))}")
    consumer = AIOKafkaConsumer(
        *topics.events,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        **security.client_options(),
    )
    try:  # closed however it ends: a consumer that failed to start is still open
        await consumer.start()
        parts = event_partitions(consumer, topics) or []
        starts = await consumer.beginning_offsets(parts)
        ends = await consumer.end_offsets(parts)
        if pending is not None and pending.targets is not None:
            targets = {tp: pending.targets.get((tp.topic, tp.partition), ends[tp]) for tp in parts}
        elif until is not None:
            found = await consumer.offsets_for_times(
                {tp: int(until.timestamp() * 1000) for tp in parts}
            )
            targets = {tp: found[tp].offset if found[tp] else ends[tp] for tp in parts}
        else:
            targets = ends
    finally:
        await consumer.stop()
    if pending is not None:
        number, chosen, until = pending.number, pending.projections, pending.until
    else:
        number = max((g.number for g in await asyncio.to_thread(store.generations.all)), default=0)
        number += 1
        chosen = chosen_projections(projections)
    return RebuildPlan(
        generation=number,
        projections=chosen,
        group_id=group_for(base_group, store, number),
        until=until,
        partitions=tuple(PartitionPlan(tp, starts[tp], targets[tp]) for tp in parts),
        resume=resume,
    )


async def _existing_topics(bootstrap: str, security: KafkaSecurity) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
    try:
        await admin.start()
        return set(await admin.list_topics())
    finally:
        await admin.close()


@dataclass(frozen=True)
class RebuildSummary:
    generation: Generation
    events: int
    seconds: float
    verification: Verification

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def rebuild(
    plan: RebuildPlan,
    *,
    bootstrap: str,
    topics: Topics,
    store: Store,
    progress: Progress | None = None,
    session_timeout_ms: int = 10_000,
    max_batch: int = 50_000,
    max_wait_ms: int = 200,
    keep_retired: int | None = None,
    security: KafkaSecurity = PLAINTEXT,
    allow_loss: bool = False,
    warm: Warm | None = None,
    cancel: Cancellation | None = None,
) -> RebuildSummary:
    """Replay, verify, and (unless the plan stops at a point in time) cut over; then drop
    the retired generations beyond the newest ``keep_retired`` (None keeps them all). A
    generation that lacks rows readers are shown is not cut over, unless ``allow_loss``
    (``verification.refuse_loss``); it stays unfinished, to resume or discard. ``warm``, told
    the verified generation, fills the caches readers will read once it is shown, just before
    the cut-over. ``cancel``, once asked, ends the replay between two batches, those in hand
    written and committed, and raises ``RebuildCancelledError``: the generation stays
    unfinished, to resume from there or discard. Asked after the replay, it changes nothing.

    The live projectors (``consumers.live``) take the new generation over from there.
    """
    generations = store.generations
    if plan.resume:
        generation = await asyncio.to_thread(generations.set_state, plan.generation, "building")
    else:
        generation = await asyncio.to_thread(
            generations.create,
            plan.generation,
            plan.projections,
            until=plan.until,
            targets={(tp.topic, tp.partition): o for tp, o in plan.targets.items()},
        )
    fresh_tally = None if plan.resume else Tally(plan.projections)
    began = time.perf_counter()
    projector = Projector(
        bootstrap=bootstrap,
        topics=topics,
        group_id=plan.group_id,
        store=store,
        generation=generation.number,
        projections=plan.projections,
        limits=plan.targets if plan.until else None,
        send_dead_letters=False,
        on_batch=(lambda _, rows: fresh_tally.add(rows)) if fresh_tally is not None else None,
        session_timeout_ms=session_timeout_ms,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        security=security,
    )
    async with projector:
        positions: dict[TopicPartition, int] = {}
        with cyclic_gc_paused():
            while not _reached(positions, plan.targets):
                if cancel is not None and cancel.asked.is_set():  # leaving flushes the batches
                    raise RebuildCancelledError(generation.number)
                await projector.step()
                positions = await projector.positions()
                if progress is not None:
                    progress(positions)
            if cancel is not None:
                cancel.replayed.set()
            await projector.flush()
        seconds = time.perf_counter() - began
        await asyncio.to_thread(generations.set_state, generation.number, "verifying")
        written = {  # a replay up to a time fetched past its limits and dropped the rest
            tp: min(position, plan.targets[tp]) if plan.until else position
            for tp, position in positions.items()
        }
        tally = fresh_tally or await tally_topics(
            bootstrap, topics, projector.codec, plan.projections, written, security
        )
        report = await asyncio.to_thread(verify, store, generation.number, tally, plan.projections)
        if not report.ok:
            await asyncio.to_thread(
                generations.set_state, generation.number, "failed", report=report.to_json()
            )
            raise VerificationError(generation.number, report)
        if plan.until is not None:
            done = await asyncio.to_thread(
                generations.set_state, generation.number, "frozen", report=report.to_json()
            )
            return RebuildSummary(done, projector.stats.events, seconds, report)
        await asyncio.to_thread(
            generations.set_state, generation.number, "verifying", report=report.to_json()
        )
        caught_up_from = await asyncio.to_thread(generations.now)
        await projector.catch_up()
        if not allow_loss:
            await asyncio.to_thread(refuse_loss, store, generation, caught_up_from)
    if warm is not None:
        await _warmed(warm, generation)
    done = await asyncio.to_thread(generations.cut_over, generation.number)
    if keep_retired is not None:
        await asyncio.to_thread(generations.prune, keep_retired)
    return RebuildSummary(done, projector.stats.events, seconds, report)


async def _warmed(warm: Warm, generation: Generation) -> None:
    """``warm`` in a thread, once the rebuild's projector is closed (an idle consumer would
    leave its group during the minutes a first refresh takes; the live projectors resume from
    its offsets after the cut-over), told to stop when its task is cancelled (a shutdown
    would wait for it). The caches only speed reads up: a failure is logged and the cut-over
    goes on, the caches then filled by the service's refreshes as without a warm-up."""
    log.info("rebuild_warming_caches", generation=generation.number)
    stopping = threading.Event()
    try:
        await asyncio.to_thread(warm, generation, stopping.is_set)
    except Exception as exc:  # any failure: the generation is verified, only slower to read
        log.warning("rebuild_warm_failed", generation=generation.number, error=str(exc))
    finally:
        stopping.set()


def _reached(positions: dict[TopicPartition, int], targets: dict[TopicPartition, int]) -> bool:
    return set(positions) == set(targets) and all(
        positions[tp] >= end for tp, end in targets.items()
    )


async def discard(
    store: Store, bootstrap: str, base_group: str, security: KafkaSecurity = PLAINTEXT
) -> Generation:
    """Drop the unfinished rebuild's consumer group's offsets, then its rows: with Kafka out
    of reach nothing is dropped, and the discard can be asked again as a whole."""
    pending = await asyncio.to_thread(store.generations.unfinished)
    if pending is None:
        raise GenerationError("there is no unfinished rebuild to discard")
    try:
        await delete_group(bootstrap, group_for(base_group, store, pending.number), security)
    except BrokerResponseError as exc:
        raise GenerationError(f"generation {pending.number} is kept: {exc}") from exc
    return await asyncio.to_thread(store.generations.drop, pending.number)
