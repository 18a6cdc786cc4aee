"""Reading events back from a real topic, as a consumer would."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from clickhouse_connect.driver.client import Client

from consumers.projector import Projector
from consumers.storage.clickhouse import Store
from queries import Reader
from queries.models import Completeness
from queries.sessions import session_detail
from schemas import EventCodec, Topics
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


async def committed_total(bootstrap: str, group: str) -> int:
    """The sum of a consumer group's committed offsets: how far it has got, in records."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for meta in offsets.values() if meta.offset > 0)


async def store_group(bootstrap: str, base_group: str, generation: int) -> str | None:
    """The consumer group of ``generation`` of the store whose groups are named after
    ``base_group`` (``group_for``), once it has joined: found on the broker, since a test
    cannot read the id of a store that another process holds."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        groups = [str(group) for group, *_ in await admin.list_consumer_groups()]
    finally:
        await admin.close()
    named = [g for g in groups if g.startswith(f"{base_group}.") and g.endswith(f".g{generation}")]
    assert len(named) <= 1, f"more than one store's group is named after {base_group}: {named}"
    return named[0] if named else None


async def projected_completeness(
    bootstrap: str, topics: Topics, clickhouse: Client, session_id: str
) -> Completeness:
    """Project every event of ``topics`` into the store, then read the session's completeness
    as the API answers it."""
    store = Store(clickhouse)
    store.migrate()
    async with Projector(
        bootstrap=bootstrap, topics=topics, group_id=f"{topics.prefix}projector", store=store
    ) as projector:
        await projector.catch_up()
    return session_detail(Reader(clickhouse), session_id).summary.completeness
