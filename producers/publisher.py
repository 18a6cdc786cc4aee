"""Publishing events and awaiting their acknowledgement: for tools, tests and the demo.

Bots use ``TranscriptProducer`` instead, which never makes its caller wait. Keying by
session_id keeps a session's events in one partition, which is what makes per-session order
hold downstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from producers.kafka import PLAINTEXT, KafkaSecurity, kafka_producer
from schemas import Event, EventCodec, Topics


class EventPublisher:
    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        *,
        codec: EventCodec | None = None,
        compression: str | None = "zstd",
        linger_ms: int = 5,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.topics = topics
        self.codec = codec or EventCodec()
        self._producer = kafka_producer(
            bootstrap, security=security, compression=compression, linger_ms=linger_ms
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish_all(self, events: Sequence[Event]) -> None:
        """Send events pipelined, then wait for every acknowledgement (in-order per partition)."""
        pending = [
            await self._producer.send(
                self.topics.for_event(e), self.codec.encode(e), key=e.session_id.encode()
            )
            for e in events
        ]
        for delivery in pending:
            await delivery

    async def __aenter__(self) -> EventPublisher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
