"""A second projector joins the group mid-stream and leaves again: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from consumers.projector import Projector
from consumers.storage.clickhouse import Store
from producers import EventPublisher
from schemas import Topics
from tests.conftest import unique_name
from tests.waiting import until
from tstore.demo import SCRIPT, conversation_events

pytestmark = pytest.mark.integration

SESSIONS = 60


async def _stream(bootstrap: str, topics: Topics) -> None:
    async with EventPublisher(bootstrap, topics) as publisher:
        for n in range(SESSIONS):
            await publisher.publish_all(conversation_events(f"s{n:03d}", "bot", datetime.now(UTC)))
            await asyncio.sleep(0.05)


def _member(bootstrap: str, topics: Topics, group: str, store: Store, **options: Any) -> Projector:
    """A projector of ``group``, quick to hand over a batch."""
    return Projector(
        bootstrap=bootstrap, topics=topics, group_id=group, store=store, max_wait_ms=50, **options
    )


def _assert_every_session_whole(store: Store) -> None:
    expected_turns = [t.text for t in SCRIPT]
    for n in range(SESSIONS):
        assert [t.text for t in store.session(f"s{n:03d}")] == expected_turns


async def test_a_projector_joining_and_leaving_mid_stream_loses_and_doubles_nothing(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store = Store(clickhouse)
    group = unique_name("group")

    def projector() -> Projector:
        return _member(kafka_bootstrap, topics, group, store)

    first_stop, second_stop = asyncio.Event(), asyncio.Event()
    async with projector() as first:
        first_running = asyncio.create_task(first.run(first_stop))
        streaming = asyncio.create_task(_stream(kafka_bootstrap, topics))
        await asyncio.sleep(0.8)
        async with projector() as second:
            second_running = asyncio.create_task(second.run(second_stop))
            await asyncio.sleep(1.2)
            second_stop.set()
            await second_running
        await streaming
        first_stop.set()
        await first_running
    async with projector() as last:  # alone in the group, so assigned every partition at once
        await last.catch_up()
    assert second.stats.events > 0, "the second projector took part"

    _assert_every_session_whole(store)
    events = clickhouse.query("SELECT count() FROM session_events").result_rows[0][0]
    assert events == SESSIONS * (2 * len(SCRIPT) + 1)  # and its SessionEnded
    assert store.incomplete_sessions() == []


async def test_catching_up_right_after_a_member_left_reads_the_partitions_it_held(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    """The group learns that a member left only at a heartbeat (every third of the session
    timeout: 10 s here); until then the one left holds only its share of the partitions, and
    catching up must not stop at the ends of that share."""
    store = Store(clickhouse)
    group = unique_name("group")

    def projector() -> Projector:
        return _member(kafka_bootstrap, topics, group, store, session_timeout_ms=30_000)

    async with projector() as first:
        first_stop, second_stop = asyncio.Event(), asyncio.Event()
        first_running = asyncio.create_task(first.run(first_stop))
        async with projector() as second:
            second_running = asyncio.create_task(second.run(second_stop))
            await until(lambda: bool(first.held and second.held), 60, "both hold partitions")
            second_stop.set()
            await second_running
        first_stop.set()
        await first_running
        await _stream(kafka_bootstrap, topics)
        await first.catch_up()

    _assert_every_session_whole(store)
