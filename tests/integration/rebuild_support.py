"""What the rebuild tests share: events published, a live store projected from them, a
rebuild planned over it, and what readers are shown."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from bench.codec import realistic_events
from consumers.live import live_projectors
from consumers.projections import PROJECTIONS
from consumers.rebuild import RebuildPlan, plan_rebuild
from consumers.storage.clickhouse import Store
from producers import EventPublisher
from schemas import Topics
from tests.conftest import unique_name


async def publish(bootstrap: str, topics: Topics, count: int, start: int = 0) -> None:
    async with EventPublisher(bootstrap, topics) as publisher:
        await publisher.publish_all(realistic_events(count, start=start))


async def project_live(bootstrap: str, topics: Topics, store: Store, group: str) -> None:
    for projector in await live_projectors(
        bootstrap=bootstrap, topics=topics, base_group=group, store=store
    ):
        async with projector:
            await projector.catch_up()


async def rebuild_plan(
    bootstrap: str,
    topics: Topics,
    store: Store,
    group: str,
    *,
    resume: bool = False,
    projections: tuple[str, ...] = PROJECTIONS,
    until: datetime | None = None,
) -> RebuildPlan:
    return await plan_rebuild(
        bootstrap=bootstrap,
        topics=topics,
        store=store,
        base_group=group,
        projections=projections,
        until=until,
        resume=resume,
    )


async def live_store(
    bootstrap: str, topics: Topics, clickhouse: Client, events: int
) -> tuple[Store, str]:
    """A store whose live generation has projected ``events`` published events."""
    store = Store(clickhouse)
    group = unique_name("live")
    await publish(bootstrap, topics, events)
    await project_live(bootstrap, topics, store, group)
    return store, group


def contents(client: Client) -> dict[str, list[tuple[Any, ...]]]:
    return {
        view: [
            tuple(r)
            for r in client.query(
                f"SELECT * EXCEPT (source_topic, source_partition, source_offset, projected_at) "
                f"FROM {view} ORDER BY tuple(*)"
            ).result_rows
        ]
        for view in (*PROJECTIONS, "turn_durations")
    }
