"""A turn through the real broker and the real engine: publish, project, read back."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from consumers.metrics import ProjectorMetrics
from consumers.projections.transcripts import TranscriptRow
from consumers.projector import Projector
from consumers.storage.clickhouse import Store
from consumers.topics_admin import ensure_topics
from producers import EventPublisher
from schemas import Topics
from schemas.models import Event
from service.state import StoreState
from tests.conftest import TEST_PARTITIONS, unique_name
from tests.events import T0, turn_pair
from tests.integration.serving import serving
from tests.integration.topic_support import made_again

pytestmark = pytest.mark.integration


async def _publish_and_project(
    bootstrap: str, topics: Topics, store: Store, events: list[Event], group: str = "projector"
) -> None:
    async with EventPublisher(bootstrap, topics) as publisher:
        await publisher.publish_all(events)
    async with Projector(
        bootstrap=bootstrap, topics=topics, group_id=f"{topics.prefix}{group}", store=store
    ) as projector:
        await projector.catch_up()


def _assert_the_turn(rows: list[TranscriptRow], session_id: str) -> None:
    assert len(rows) == 1
    (row,) = rows
    assert (row.session_id, row.turn_id, row.role) == (session_id, "turn-1", "user")
    assert row.text == "Where is my order?"
    assert row.started_at == T0
    assert row.stopped_at == T0 + timedelta(seconds=1, milliseconds=500)
    assert row.duration_ms == 1500
    assert row.complete
    assert row.user_id == "caller-7"
    assert [w.text for w in row.words] == ["Where"]


async def test_a_started_and_stopped_turn_becomes_one_transcript_row(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store = Store(clickhouse)
    session_id = unique_name("session")
    started, stopped = turn_pair(session_id=session_id)

    await _publish_and_project(kafka_bootstrap, topics, store, [started, stopped])
    first = store.session(session_id)
    _assert_the_turn(first, session_id)

    await _publish_and_project(kafka_bootstrap, topics, store, [stopped, started] * 2)
    again = store.session(session_id)
    _assert_the_turn(again, session_id)
    assert again[0].version == first[0].version


async def test_reverse_order_and_duplicates_alone_give_the_same_row(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store = Store(clickhouse)
    session_id = unique_name("session")
    started, stopped = turn_pair(session_id=session_id)

    await _publish_and_project(kafka_bootstrap, topics, store, [stopped, stopped, started, started])
    _assert_the_turn(store.session(session_id), session_id)


async def test_an_undecodable_record_is_counted_and_the_rest_projected(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    from aiokafka import AIOKafkaProducer

    store = Store(clickhouse)
    session_id = unique_name("session")
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await raw.start()
    try:
        await raw.send_and_wait(topics.turn_events, b"garbage", key=session_id.encode())
    finally:
        await raw.stop()
    async with EventPublisher(kafka_bootstrap, topics) as publisher:
        await publisher.publish_all(list(turn_pair(session_id=session_id)))
    metrics = ProjectorMetrics()
    async with Projector(
        bootstrap=kafka_bootstrap,
        topics=topics,
        group_id=unique_name("g"),
        store=store,
        metrics=metrics,
    ) as projector:
        await projector.catch_up()
        assert projector.stats.rejected == 1
        assert projector.stats.events == 2
        while await projector.step():  # the live loop goes on to a fetch that brings nothing
            pass
        held = {(tp.topic, str(tp.partition)) for tp in projector.held}
    _assert_the_turn(store.session(session_id), session_id)

    async with serving(StoreState(metrics=metrics)) as url, httpx.AsyncClient() as http:
        scraped = (await http.get(f"{url}/metrics")).text
    assert "tstore_projector_events_total 2.0" in scraped
    assert "tstore_projector_dead_letters_total 1.0" in scraped
    assert 'tstore_projector_insert_seconds_count{table="transcripts"}' in scraped
    lags = [
        line for line in scraped.splitlines() if line.startswith("tstore_projector_lag_offsets{")
    ]
    labels = [dict(re.findall(r'(\w+)="([^"]*)"', line)) for line in lags]
    assert {(label["topic"], label["partition"]) for label in labels} == held, "every partition"
    assert len(held) == 2 * TEST_PARTITIONS  # both event topics, records in them or not
    assert all(line.endswith(" 0.0") for line in lags), lags


async def test_a_topic_made_again_is_projected_though_its_offsets_start_again(
    kafka_bootstrap: str, clickhouse: Client
) -> None:
    """Topics deleted and created again (or a new broker behind the same names) number their
    records from 0 again: the first batch of the new topic has the boundaries of one already
    written, and was refused as its replay, then committed: the call was lost."""
    store = Store(clickhouse)
    topics = Topics(prefix=f"{unique_name('again')}.")
    first, second = unique_name("session"), unique_name("session")
    await ensure_topics(kafka_bootstrap, topics, partitions=1)
    await _publish_and_project(kafka_bootstrap, topics, store, list(turn_pair(session_id=first)))
    await made_again(kafka_bootstrap, topics, partitions=1)
    await _publish_and_project(
        kafka_bootstrap, topics, store, list(turn_pair(session_id=second)), group="after"
    )
    _assert_the_turn(store.session(first), first)
    _assert_the_turn(store.session(second), second)
