"""Each store projects through consumer groups of its own: a store made anew (its data path
removed, its database dropped) on a broker whose groups hold another store's offsets reads
the topics from their start instead of taking up those offsets and starting empty, and two
stores on one broker each get every partition. A store that held rows before stores had an
id keeps the groups whose offsets it wrote."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from bench.codec import realistic_events
from consumers.live import live_projectors
from consumers.projector import group_for
from consumers.storage.clickhouse import Store, connect
from producers import EventPublisher
from schemas import Topics
from tests.conftest import unique_name
from tests.integration.stored_rows import event_rows

pytestmark = pytest.mark.integration


async def _caught_up(kafka_bootstrap: str, topics: Topics, store: Store, group: str) -> int:
    """Projects what the topics hold into ``store``; says how many sessions it then has."""
    for projector in await live_projectors(
        bootstrap=kafka_bootstrap, topics=topics, base_group=group, store=store
    ):
        async with projector:
            await projector.catch_up()
    ((sessions,),) = store.client.query(
        "SELECT uniqExact(session_id) FROM session_events_generations"
    ).result_rows
    return int(sessions)


async def test_a_store_made_anew_reads_the_topics_from_their_start(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, clickhouse: Client
) -> None:
    group = unique_name("g")
    async with EventPublisher(kafka_bootstrap, topics) as publisher:
        await publisher.publish_all(realistic_events(300))
    first = Store(clickhouse)
    first.migrate()
    every = await _caught_up(kafka_bootstrap, topics, first, group)
    assert every > 0
    again = unique_name("again")
    try:
        anew = Store(connect(clickhouse_dsn, again))
        anew.migrate()
        assert await _caught_up(kafka_bootstrap, topics, anew, group) == every
        assert anew.identity not in ("", first.identity)
        assert group_for(group, anew, 1) == f"{group}.{anew.identity}.g1"
    finally:
        connect(clickhouse_dsn, again).command(f"DROP DATABASE IF EXISTS `{again}`")


def test_a_store_that_held_rows_before_stores_had_an_id_keeps_its_groups(
    clickhouse: Client,
) -> None:
    """Its rows were projected by ``<group>.g<generation>``, whose offsets say how far."""
    store = Store(clickhouse)
    store.migrate()
    clickhouse.command("TRUNCATE TABLE store_identity")
    clickhouse.command("DELETE FROM schema_migrations WHERE version = 112")
    store.insert("session_events", event_rows("held", [0, 1]), generation=1)
    older = Store(clickhouse)
    older.migrate()
    assert older.identity == ""
    assert group_for("g", older, 1) == "g.g1"
