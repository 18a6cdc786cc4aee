"""Reading events back from a real topic, as a consumer would."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer

from schemas import EventCodec
from schemas.models import Event


async def read_events(
    bootstrap: str, topic: str, expected: int, within_s: float = 30
) -> list[Event]:
    """Every event on ``topic`` in log order, waiting until there are ``expected`` of them."""
    codec = EventCodec()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    events: list[Event] = []
    try:
        deadline = time.monotonic() + within_s
        while len(events) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            events += [codec.decode(r.value or b"") for rs in batches.values() for r in rs]
    finally:
        await consumer.stop()
    return events
