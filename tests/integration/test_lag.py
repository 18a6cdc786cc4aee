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
from consumers.metrics import BLIND_AFTER_S
from consumers.projector import group_for
from consumers.storage.clickhouse import Store
from producers import EventPublisher
from schemas import Topics
from tests.conftest import unique_name
from tstore.devkafka.broker import free_port

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


async def test_a_probe_that_kafka_does_not_answer_says_for_how_long(
    topics: Topics, clickhouse: Client
) -> None:
    """No lag rather than a stale one, and, once that has lasted ``BLIND_AFTER_S``, for how
    long: what the ``/readyz`` of a replica that does not project reports."""
    store = Store(clickhouse)
    store.migrate()
    probe = LagProbe(f"127.0.0.1:{free_port()}", topics, unique_name("g"), every_s=0.1)
    stop = asyncio.Event()
    began = time.time()
    running = asyncio.create_task(probe.run(stop, store))
    try:
        while (failing := probe.failing_s) is None:
            assert time.time() - began < 120, "the probe never said Kafka does not answer"
            await asyncio.sleep(0.1)
        assert probe.lag_s is None
        assert BLIND_AFTER_S <= failing <= time.time() - began
    finally:
        stop.set()
        await running
