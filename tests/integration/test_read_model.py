"""The read model through the real broker and engine: tables, views, exactness."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
from clickhouse_connect.driver.client import Client

from audio.stores import open_chunk_store
from consumers.projections import project
from consumers.projector import Projector
from consumers.storage.clickhouse import Store, connect
from consumers.topics_admin import ensure_topics
from producers import EventPublisher, TranscriptProducer
from producers.simulator import script_call, simulate
from schemas import Topics, TurnStopped
from schemas.models import Event
from tests.conftest import unique_name
from tests.events import chunk, envelope, turn_pair
from tests.frames import decoded
from tests.integration.audio_support import turn_id_of
from tstore.demo import conversation_events

pytestmark = pytest.mark.integration


async def _project(bootstrap: str, topics: Topics, store: Store) -> Projector:
    async with Projector(
        bootstrap=bootstrap, topics=topics, group_id=unique_name("g"), store=store
    ) as projector:
        await projector.catch_up()
    return projector


async def test_a_simulated_call_fills_every_table_and_latencies_follow_the_script(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client, tmp_path: Path
) -> None:
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="sim", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:
        (session,) = await simulate(
            producer, sessions=1, rate=0, turns=10, seed=11, chunks=open_chunk_store(str(tmp_path))
        )
    script = script_call(random.Random(11), 10)
    store = Store(clickhouse)
    await _project(kafka_bootstrap, topics, store)

    turns = store.session(session)
    assert [(t.turn_id, t.text, t.interrupted) for t in turns] == [
        (turn_id_of(s), s.text, s.interrupted) for s in script
    ]
    chunks = store.chunks(session)
    assert {c.track for c in chunks} == {"user", "assistant"}
    digests = {c.chunk_id: c.sha256 for c in chunks}
    assert digests == {c.chunk_id: _sha256_of(c.uri) for c in chunks}
    assert store.incomplete_sessions() == []

    latencies: dict[str, Any] = {
        turn_id: latency
        for turn_id, latency in clickhouse.query(
            "SELECT turn_id, response_latency_ms FROM turn_durations "
            "WHERE session_id = {s:String} AND role = 'assistant'",
            parameters={"s": session},
        ).result_rows
    }
    for turn in script[1:]:
        if turn.role == "assistant":
            answered = max(t.end_s for t in script[: turn.index] if t.role == "user")
            expected_ms = (turn.start_s - answered) * 1000
            assert abs(latencies[f"assistant-{turn.index}"] - expected_ms) <= 1
    assert latencies["assistant-0"] is None


def _sha256_of(uri: str) -> str:
    return hashlib.sha256(Path(url2pathname(urlparse(uri).path)).read_bytes()).hexdigest()


def _table_contents(client: Client) -> dict[str, list[tuple[Any, ...]]]:
    """Every table as readers see it, minus where and when each row was written."""
    contents = {}
    for table in ("transcripts", "audio_chunks", "session_events", "turn_durations"):
        columns = [
            name
            for (name,) in client.query(
                "SELECT name FROM system.columns WHERE database = currentDatabase() "
                "AND table = {t:String} AND name NOT LIKE 'source_%' AND name != 'projected_at' "
                "ORDER BY position",
                parameters={"t": table},
            ).result_rows
        ]
        result = client.query(f"SELECT {', '.join(columns)} FROM {table} ORDER BY tuple(*)")
        contents[table] = [tuple(row) for row in result.result_rows]
    return contents


async def test_any_order_and_duplication_through_kafka_gives_the_same_tables(
    kafka_bootstrap: str, clickhouse_dsn: str
) -> None:
    events: list[Event] = conversation_events("s-order", "bot", datetime.now(UTC))
    events += [chunk(seq=len(events) + i, session_id="s-order", chunk_seq=i) for i in range(3)]
    shuffled = events + random.Random(5).choices(events, k=len(events))
    random.Random(6).shuffle(shuffled)

    contents = []
    for delivered in (events, shuffled):
        topics = Topics(f"{unique_name('order')}.")
        await ensure_topics(kafka_bootstrap, topics, partitions=3)
        async with EventPublisher(kafka_bootstrap, topics) as publisher:
            await publisher.publish_all(delivered)
        database = unique_name("order")
        client = connect(clickhouse_dsn, database)
        try:
            await _project(kafka_bootstrap, topics, Store(client))
            contents.append(_table_contents(client))
        finally:
            client.command(f"DROP DATABASE `{database}`")
    clean, messy = contents
    assert clean == messy
    assert len(clean["transcripts"]) == 7
    assert len(clean["audio_chunks"]) == 3


async def test_a_session_with_holes_in_its_seq_is_reported_incomplete(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    started, stopped = turn_pair(session_id="holey", seq=0)
    late = TurnStopped(**(stopped.model_dump() | envelope(3, "holey") | {"turn_id": "t-9"}))
    whole: list[Event] = [*turn_pair(session_id="whole", seq=0)]
    async with EventPublisher(kafka_bootstrap, topics) as publisher:
        await publisher.publish_all([started, stopped, late, *whole])
    store = Store(clickhouse)
    await _project(kafka_bootstrap, topics, store)
    assert store.incomplete_sessions() == [("holey", 3, 4)]


def test_a_retried_insert_with_the_same_token_is_refused(clickhouse: Client) -> None:
    store = Store(clickhouse)
    store.migrate()
    rows = project(decoded(turn_pair()).frames)["transcripts"]
    for _ in range(3):
        store.insert("transcripts", rows, generation=1, dedup_token="transcripts:t:0:0-1:g1")
    store.insert("transcripts", rows, generation=1, dedup_token="transcripts:t:0:0-1:g2")
    raw = clickhouse.query("SELECT count() FROM transcripts_generations").result_rows[0][0]
    assert raw <= 2 * rows.height, "the same token three times wrote once"
    assert len(store.session("s-1")) == 1
