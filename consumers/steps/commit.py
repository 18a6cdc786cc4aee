"""Committing a handled batch: one past the last offset of every partition in it.

A commit refused because the group rebalanced while the batch was written is not an error:
the partition's new owner replays the batch from the last commit, and the tokens and the
versioned merges absorb the replay.
"""

from __future__ import annotations

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata

from consumers.steps import Records

log = structlog.get_logger(__name__)


def next_offsets(records: Records) -> dict[TopicPartition, OffsetAndMetadata]:
    return {
        tp: OffsetAndMetadata(batch[-1].offset + 1, "") for tp, batch in records.items() if batch
    }


async def commit(consumer: AIOKafkaConsumer, records: Records) -> bool:
    """Commit the batch; False when a rebalance took it away first."""
    try:
        await consumer.commit(next_offsets(records))
    except CommitFailedError as exc:
        log.warning("commit_failed_after_rebalance", error=str(exc))
        return False
    return True
