"""A rebuild refused at its cut-over stays unfinished until it is resumed or discarded: both
ways must work in the case the refusal names, topics made again, even when they are empty."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from clickhouse_connect.driver.client import Client

from consumers.projections import PROJECTIONS
from consumers.projector import group_for
from consumers.rebuild import discard, rebuild
from consumers.storage.clickhouse import Store
from consumers.verification import SessionsLostError
from schemas import Topics
from tests.conftest import TEST_PARTITIONS
from tests.integration.rebuild_support import contents, live_store, publish, rebuild_plan
from tests.integration.topic_support import made_again

pytestmark = pytest.mark.integration


async def _refused(
    bootstrap: str, topics: Topics, clickhouse: Client, republished: int
) -> tuple[Store, str]:
    """A store of 600 events whose topics were made again with ``republished`` of them: a
    rebuild's cut-over is refused, and generation 2 stays unfinished."""
    store, group = await live_store(bootstrap, topics, clickhouse, 600)
    await made_again(bootstrap, topics, partitions=TEST_PARTITIONS)
    if republished:
        await publish(bootstrap, topics, republished)
    plan = await rebuild_plan(bootstrap, topics, store, group)
    with pytest.raises(SessionsLostError):
        await rebuild(plan, bootstrap=bootstrap, topics=topics, store=store)
    return store, group


async def test_a_resume_allowing_loss_over_empty_topics_cuts_over_an_empty_generation(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    """Its tally re-reads the topics up to where the first run stopped: nowhere, here."""
    store, group = await _refused(kafka_bootstrap, topics, clickhouse, republished=0)
    resumed = await rebuild_plan(kafka_bootstrap, topics, store, group, resume=True)
    await rebuild(resumed, bootstrap=kafka_bootstrap, topics=topics, store=store, allow_loss=True)
    assert store.generations.current() == dict.fromkeys(PROJECTIONS, 2)
    assert all(not rows for rows in contents(clickhouse).values())


async def test_a_discard_drops_the_generation_and_its_consumer_group(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await _refused(kafka_bootstrap, topics, clickhouse, republished=300)
    rebuilt_by = group_for(group, store, 2)
    assert rebuilt_by in await _groups(kafka_bootstrap), "it committed the 300 events"
    before = contents(clickhouse)

    assert (await discard(store, kafka_bootstrap, group)).number == 2
    assert store.generations.get(2).state == "discarded"
    assert rebuilt_by not in await _groups(kafka_bootstrap)
    assert contents(clickhouse) == before, "readers are shown generation 1 as before"
    assert (await rebuild_plan(kafka_bootstrap, topics, store, group)).generation == 3


async def _groups(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {str(group[0]) for group in await admin.list_consumer_groups()}
    finally:
        await admin.close()
