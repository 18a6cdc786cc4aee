"""Sending rejected records to the dead-letter topic, with why and where they came from.

The original bytes and key are kept; headers carry the reason and the source position. The
sends are acknowledged before the batch is committed, so nothing is silently dropped.
"""

from __future__ import annotations

import asyncio

import structlog

from consumers.steps.decode import Rejected
from consumers.topics_admin import MAX_MESSAGE_BYTES
from producers.kafka import PLAINTEXT, KafkaSecurity, kafka_producer

log = structlog.get_logger(__name__)


def dead_letter_headers(rejected: Rejected) -> list[tuple[str, bytes]]:
    record = rejected.record
    return [
        ("tstore-reason", rejected.reason.encode()),
        ("tstore-detail", rejected.detail[:2000].encode()),
        ("tstore-source-topic", record.topic.encode()),
        ("tstore-source-partition", str(record.partition).encode()),
        ("tstore-source-offset", str(record.offset).encode()),
    ]


class DeadLetters:
    def __init__(self, bootstrap: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> None:
        self.topic = topic
        self._producer = kafka_producer(
            bootstrap, security=security, max_request_size=MAX_MESSAGE_BYTES + 1024
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, rejected: list[Rejected]) -> None:
        deliveries = []
        for reject in rejected:
            record = reject.record
            log.error(
                "event_rejected",
                reason=reject.reason,
                detail=reject.detail[:500],
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            deliveries.append(
                await self._producer.send(
                    self.topic, record.value, key=record.key, headers=dead_letter_headers(reject)
                )
            )
        await asyncio.gather(*deliveries)
