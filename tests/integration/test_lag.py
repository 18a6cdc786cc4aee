"""The lag a query replica reports without projecting: read from Kafka, for the shown
generation's consumer group."""

from __future__ import annotations

import asyncio
import time

import pytest
from clickhouse_connect.driver.client import Client

from bench.codec import realistic_events
from consumers.lag import LagProbe, oldest_unprojected_age_s
from consumers.live import live_projectors
from consumers.projector import group_for
from consumers.storage.clickhouse import Store
from producers import EventPublisher
from schemas import Topics
from tests.conftest import unique_name

pytestmark = pytest.mark.integration


async def test_the_lag_is_the_age_of_the_oldest_event_the_group_has_not_projected(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store = Store(clickhouse)
    store.migrate()
    base = unique_name("g")
    group = group_for(base, store, 1)
    async with EventPublisher(kafka_bootstrap, topics) as publisher:
        await publisher.publish_all(realistic_events(200))
    published = time.time()
    await asyncio.sleep(1.0)
    unseen = await oldest_unprojected_age_s(kafka_bootstrap, topics, [group])
    assert 1.0 <= unseen <= time.time() - published + 5

    for projector in await live_projectors(
        bootstrap=kafka_bootstrap, topics=topics, base_group=base, store=store
    ):
        async with projector:
            await projector.catch_up()
    assert await oldest_unprojected_age_s(kafka_bootstrap, topics, [group]) == 0.0

    probe = LagProbe(kafka_bootstrap, topics, base, every_s=0.1)
    stop = asyncio.Event()
    running = asyncio.create_task(probe.run(stop, store))
    try:
        for _ in range(200):
            if probe.lag_s is not None:
                break
            await asyncio.sleep(0.05)
        assert probe.lag_s == 0.0
    finally:
        stop.set()
        await running
