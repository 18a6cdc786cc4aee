"""The store's lag, seen from outside the projectors: for query replicas that do not project.

The live projectors' consumer groups commit an offset per partition once a batch is in the
store; the oldest record past a committed offset is the oldest event not yet projected, and
its broker timestamp says how old it is. A process that projects knows this already (its
metrics); ``LagProbe`` reads it from Kafka for one that does not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from consumers.metrics import blind_for
from consumers.projector import group_for
from consumers.storage.clickhouse import Store
from producers.kafka import PLAINTEXT, KafkaSecurity, started
from schemas import Topics

log = structlog.get_logger(__name__)


async def oldest_unprojected_age_s(
    bootstrap: str,
    topics: Topics,
    groups: Iterable[str],
    timeout_s: float = 2.0,
    security: KafkaSecurity = PLAINTEXT,
) -> float:
    """Seconds since the oldest record that some group has not committed past; 0 when every
    group is caught up."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **security.client_options()
    )
    try:  # both closed however it ends: a client that failed to start is still open
        await started(admin, bootstrap, security)
        await consumer.start()
        described = await admin.describe_topics(list(topics.events))
        partitions = [
            TopicPartition(topic["topic"], p["partition"])
            for topic in described
            for p in topic["partitions"]
        ]
        ends = await consumer.end_offsets(partitions)
        behind: dict[TopicPartition, int] = {}
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group)
            for tp in partitions:
                at = committed[tp].offset if tp in committed else 0
                if 0 <= at < ends[tp]:
                    behind[tp] = min(at, behind.get(tp, at))
        if not behind:
            return 0.0
        consumer.assign(list(behind))
        for tp, offset in behind.items():
            consumer.seek(tp, offset)
        stamps = []
        for tp in behind:  # one at a time: ``max_records`` bounds a whole fetch, not a partition
            fetched = await consumer.getmany(tp, timeout_ms=int(timeout_s * 1000), max_records=1)
            stamps += [records[0].timestamp for records in fetched.values() if records]
        return max(0.0, time.time() - min(stamps) / 1000) if stamps else 0.0
    finally:
        await consumer.stop()
        await admin.close()


class LagProbe:
    """Measures the lag every ``every_s`` seconds for the generations readers are shown."""

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        base_group: str,
        every_s: float = 2.0,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._topics = topics
        self._base_group = base_group
        self._every_s = every_s
        self.lag_s: float | None = None
        """The last measurement; None before the first or after a failed one."""
        self._failing_since: float | None = None

    @property
    def failing_s(self) -> float | None:
        """How long its measurements have failed (Kafka away, say), once that is
        ``BLIND_AFTER_S`` or more, as the projectors' own silence is told."""
        return blind_for(self._failing_since)

    async def run(self, stop: asyncio.Event, store: Store) -> None:
        while not stop.is_set():
            try:
                shown = await asyncio.to_thread(store.generations.shown)
                groups = [group_for(self._base_group, store, g) for g in shown]
                self.lag_s = await oldest_unprojected_age_s(
                    self._bootstrap, self._topics, groups, security=self._security
                )
                self._failing_since = None
            except Exception as exc:  # Kafka away: the lag is unknown, not zero
                self.lag_s = None
                self._failing_since = self._failing_since or time.time()
                log.warning("lag_probe_failed", error=str(exc) or type(exc).__name__)
            try:
                await asyncio.wait_for(stop.wait(), self._every_s)
            except TimeoutError:
                continue
