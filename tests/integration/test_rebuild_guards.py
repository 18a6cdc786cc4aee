"""What a rebuild checks before its cut-over: that readers lose nothing they are shown, and
that the caches of the generation they will be shown are filled."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from clickhouse_connect.driver.client import Client

from bench.codec import realistic_events
from consumers.projections import PROJECTIONS
from consumers.rebuild import rebuild
from consumers.storage.clickhouse import connect
from consumers.verification import SessionsLostError
from producers import EventPublisher
from queries import Reader
from queries.facts import FactsKeeper, warm
from queries.marks import Generations, mark
from queries.metrics import metrics
from queries.paging import as_utc
from schemas import ChunkReady, Topics
from tests.conftest import TEST_PARTITIONS
from tests.integration.rebuild_support import contents, live_store, publish, rebuild_plan
from tests.integration.topic_support import made_again

pytestmark = pytest.mark.integration


async def test_a_rebuild_that_would_take_sessions_from_readers_is_not_cut_over(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    """Topics that no longer hold what was projected from them (made again here; a new
    broker, a retention limit) replay into a generation that verifies against them, and was
    cut over: the readers lost every call the topics had forgotten."""
    store, group = await live_store(kafka_bootstrap, topics, clickhouse, 600)
    before = contents(clickhouse)
    await made_again(kafka_bootstrap, topics, partitions=TEST_PARTITIONS)
    await publish(kafka_bootstrap, topics, 300, start=600)

    plan = await rebuild_plan(kafka_bootstrap, topics, store, group)
    with pytest.raises(SessionsLostError) as refused:
        await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store)
    said = str(refused.value)
    assert said.startswith("generation 2 lacks what readers are shown")
    for projection in PROJECTIONS:
        assert re.search(rf"{projection}: \d+ rows of 10 sessions \('session-000000'", said)
    assert "--resume --allow-loss" in said
    assert store.generations.current() == dict.fromkeys(PROJECTIONS, 1)
    assert contents(clickhouse) == before
    assert store.generations.get(2).state == "verifying"

    resumed = await rebuild_plan(kafka_bootstrap, topics, store, group, resume=True)
    await rebuild(resumed, bootstrap=kafka_bootstrap, topics=topics, store=store, allow_loss=True)
    assert store.generations.current() == dict.fromkeys(PROJECTIONS, 2)
    assert len(contents(clickhouse)["session_events"]) == 300


async def test_a_rebuild_that_would_take_part_of_calls_from_readers_is_not_cut_over(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    """Compaction or a retention limit through a call leaves the session in the topics with
    some of its events: every session is still there, but not all of its chunks."""
    store, group = await live_store(kafka_bootstrap, topics, clickhouse, 600)
    await made_again(kafka_bootstrap, topics, partitions=TEST_PARTITIONS)
    events = realistic_events(600)
    async with EventPublisher(kafka_bootstrap, topics) as publisher:
        await publisher.publish_all(
            [e for n, e in enumerate(events) if not (isinstance(e, ChunkReady) and n % 2)]
        )

    plan = await rebuild_plan(kafka_bootstrap, topics, store, group)
    with pytest.raises(SessionsLostError) as refused:
        await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store)
    said = str(refused.value)
    assert "transcripts:" not in said
    assert re.search(r"audio_chunks: \d+ rows of 10 sessions", said), said
    assert re.search(r"session_events: \d+ rows of 10 sessions", said), said
    assert store.generations.current() == dict.fromkeys(PROJECTIONS, 1)


async def test_a_rebuild_fills_the_caches_of_its_generation_before_it_cuts_over(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client, clickhouse_dsn: str, database: str
) -> None:
    """Without a cache, every analytics read and page folds the store live until the first
    refresh after the cut-over has cached it (minutes at 1M sessions). The warm-up folds on
    two connections, each reading the generation being rebuilt."""
    store, group = await live_store(kafka_bootstrap, topics, clickhouse, 900)
    FactsKeeper(clickhouse).refresh()
    reader = Reader(clickhouse, pointer_ttl_s=0.0)
    ((first, last),) = reader.rows("SELECT min(started_at), max(started_at) FROM transcripts")
    since = as_utc(first).replace(minute=0, second=0, microsecond=0)
    until = as_utc(last).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    before = metrics(reader, since=since, until=until)

    plan = await rebuild_plan(kafka_bootstrap, topics, store, group, projections=("transcripts",))
    await rebuild(
        plan,
        bootstrap=kafka_bootstrap,
        topics=topics,
        store=store,
        warm=lambda generation, stopping: warm(
            clickhouse,
            connect(clickhouse_dsn, database),
            generation=generation.number,
            projections=generation.projections,
            stopping=stopping,
        ),
    )
    shown = Generations.of(reader)
    assert shown == Generations(2, 1, 1)
    assert mark(reader, shown) is not None
    after = metrics(reader, since=since, until=until)
    assert after.rows == before.rows
    assert after.rows
