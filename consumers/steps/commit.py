"""Committing a handled batch: one past the last offset of every partition in it.

A partition the group took away while the batch was written is not committed, and a commit
refused because of a rebalance is not an error:
the partition's new owner replays the batch from the last commit, and the tokens and the
versioned merges absorb the replay.
"""

from __future__ import annotations

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import OffsetAndMetadata

from consumers.steps import Records

log = structlog.get_logger(__name__)


def next_offsets(records: Records) -> dict[TopicPartition, OffsetAndMetadata]:
    return {
        tp: OffsetAndMetadata(batch[-1].offset + 1, "") for tp, batch in records.items() if batch
    }


async def commit(consumer: AIOKafkaConsumer, records: Records) -> bool:
    """Commit the batch's partitions still assigned; False when a rebalance took any away."""
    assigned = consumer.assignment()
    offsets = {tp: offset for tp, offset in next_offsets(records).items() if tp in assigned}
    try:
        if offsets:
            await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        log.warning("commit_failed_after_rebalance", error=str(exc))
        return False
    return len(offsets) == len(records)
