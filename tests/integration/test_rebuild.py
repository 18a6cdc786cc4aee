"""Rebuilding projections into a new generation while readers keep reading the old one."""

from __future__ import annotations

import asyncio
import io
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from fastavro import schemaless_writer
from typer.testing import CliRunner

from bench.codec import realistic_events
from consumers.admin import RebuildService
from consumers.live import live_projectors, run_live
from consumers.projections import PROJECTIONS
from consumers.rebuild import RebuildPlan, plan_rebuild, rebuild
from consumers.storage.clickhouse import Store
from consumers.storage.generations import GenerationError
from consumers.storage.session_facts import CACHE_TABLES
from consumers.verification import SessionsLostError
from producers import EventPublisher
from producers.kafka import kafka_producer
from queries import Reader
from queries.facts import FactsKeeper, warm
from queries.marks import Generations, mark
from queries.metrics import metrics
from queries.paging import as_utc
from schemas import ChunkReady, EventCodec, Topics, TurnStopped
from schemas.single_object import frame
from service.state import StoreState
from tests.conftest import TEST_PARTITIONS, unique_name
from tests.events import turn_pair
from tests.integration.serving import serving
from tests.integration.topic_support import made_again
from tstore.cli import app

pytestmark = pytest.mark.integration

EVENTS = 3_000


async def _publish(bootstrap: str, topics: Topics, count: int, start: int = 0) -> None:
    async with EventPublisher(bootstrap, topics) as publisher:
        await publisher.publish_all(realistic_events(count, start=start))


async def _project_live(bootstrap: str, topics: Topics, store: Store, group: str) -> None:
    for projector in await live_projectors(
        bootstrap=bootstrap, topics=topics, base_group=group, store=store
    ):
        async with projector:
            await projector.catch_up()


async def _plan(
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


async def _live_store(
    bootstrap: str, topics: Topics, clickhouse: Client, events: int
) -> tuple[Store, str]:
    """A store whose live generation has projected ``events`` published events."""
    store = Store(clickhouse)
    group = unique_name("live")
    await _publish(bootstrap, topics, events)
    await _project_live(bootstrap, topics, store, group)
    return store, group


def _start_live(
    bootstrap: str, topics: Topics, store: Store, group: str, stop: asyncio.Event
) -> asyncio.Task[None]:
    """The live projectors as ``tstore project`` runs them, checking often for a cut-over."""
    return asyncio.create_task(
        run_live(
            stop,
            bootstrap=bootstrap,
            topics=topics,
            base_group=group,
            store=store,
            check_every_s=0.1,
        )
    )


def _contents(client: Client) -> dict[str, list[tuple[Any, ...]]]:
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


async def test_readers_never_see_the_rebuild_until_one_cut_over_shows_all_of_it(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await _live_store(kafka_bootstrap, topics, clickhouse, EVENTS)
    before = _contents(clickhouse)
    turns, chunks, events = (len(before[p]) for p in PROJECTIONS)

    seen: list[tuple[int, int, int, int]] = []

    def read_in_a_loop(stop: threading.Event) -> None:
        while not stop.is_set():
            row = clickhouse.query(
                "SELECT (SELECT count() FROM transcripts), (SELECT count() FROM audio_chunks), "
                "(SELECT count() FROM session_events), "
                "(SELECT generation FROM current_generation FINAL WHERE view = 'transcripts')"
            ).result_rows[0]
            seen.append(tuple(int(v) for v in row))  # type: ignore[arg-type]
            time.sleep(0.005)

    stop = threading.Event()
    reader = threading.Thread(target=read_in_a_loop, args=(stop,))
    reader.start()
    FactsKeeper(clickhouse).refresh()  # the analytics' cache of generation 1
    plan = await _plan(kafka_bootstrap, topics, store, group, resume=False)
    assert plan.generation == 2
    assert plan.events == EVENTS
    summary = await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store)
    await asyncio.sleep(0.2)
    stop.set()
    reader.join()

    assert summary.verification.ok
    assert summary.events == EVENTS
    assert summary.generation.state == "live"
    assert store.generations.current() == {p: 2 for p in PROJECTIONS}
    assert store.generations.get(1).state == "retired"
    assert {s[:3] for s in seen} == {(turns, chunks, events)}, "never empty, never half-built"
    assert [s[3] for s in seen] == sorted(s[3] for s in seen), "one switch, never back"
    assert seen[-1][3] == 2
    assert _contents(clickhouse) == before

    with pytest.raises(GenerationError, match="readers see"):
        store.generations.drop(2)
    FactsKeeper(clickhouse).refresh()  # and of generation 2
    store.generations.drop(1)
    assert store.generations.size(1).rows == {}
    assert _contents(clickhouse) == before
    cached = "SELECT DISTINCT generation FROM {} FINAL ORDER BY generation"
    for table in CACHE_TABLES:
        assert clickhouse.query(cached.format(table)).result_rows == [(2,)], table


async def test_a_rebuild_cancelled_midway_resumes_to_what_a_clean_rebuild_gives(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await _live_store(kafka_bootstrap, topics, clickhouse, 12_000)
    clean = _contents(clickhouse)

    async def plan(resume: bool) -> RebuildPlan:
        return await _plan(kafka_bootstrap, topics, store, group, resume=resume)

    await _cancel_after_two_batches(
        await plan(False), kafka_bootstrap, topics, store, max_batch=1_000
    )
    assert store.generations.get(2).state == "building"
    assert store.generations.current() == {p: 1 for p in PROJECTIONS}, "readers untouched"
    with pytest.raises(GenerationError, match="unfinished"):
        await plan(False)

    summary = await rebuild(await plan(True), bootstrap=kafka_bootstrap, topics=topics, store=store)
    assert summary.verification.ok
    assert store.generations.current() == {p: 2 for p in PROJECTIONS}
    assert _contents(clickhouse) == clean


async def _cancel_after_two_batches(
    plan: RebuildPlan, bootstrap: str, topics: Topics, store: Store, *, max_batch: int
) -> None:
    """Run a rebuild and cancel it mid-replay, with work written but not committed."""
    batches = 0

    def cancel_after_two_batches(_: object) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            running.cancel()  # lands at the rebuild's next await

    running = asyncio.create_task(
        rebuild(
            plan,
            bootstrap=bootstrap,
            topics=topics,
            store=store,
            progress=cancel_after_two_batches,
            max_batch=max_batch,
        )
    )
    with pytest.raises(asyncio.CancelledError):
        await running


async def _publish_both_versions(bootstrap: str, topics: Topics, sessions: int) -> int:
    """Half the sessions' stops written by an old producer (TurnStopped v1, no language), half
    by today's (v2, with one); returns how many stops carry a language."""
    codec = EventCodec()
    v1 = codec.registry.history(TurnStopped.schema_name)[0]
    producer = kafka_producer(bootstrap)
    await producer.start()
    tagged = 0
    try:
        for n in range(sessions):
            started, stopped = turn_pair(session_id=f"lang-{n}")
            if n % 2:
                body = io.BytesIO()
                schemaless_writer(body, v1.parsed, stopped.model_dump(exclude={"language"}))
                stopped_bytes = frame(v1.fingerprint, body.getvalue())
            else:
                stopped_bytes = codec.encode(stopped.model_copy(update={"language": "en-US"}))
                tagged += 1
            for value in (codec.encode(started), stopped_bytes):
                await producer.send_and_wait(
                    topics.turn_events, value, key=started.session_id.encode()
                )
    finally:
        await producer.stop()
    return tagged


async def test_a_rebuild_fills_a_new_column_for_all_history_and_readers_switch_at_once(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store = Store(clickhouse)
    group = unique_name("live")
    tagged = await _publish_both_versions(kafka_bootstrap, topics, 40)
    await _project_live(kafka_bootstrap, topics, store, group)
    # Generation 1 as the release before the language column projected it: column at default.
    clickhouse.command(
        "ALTER TABLE transcripts_generations UPDATE language = NULL WHERE generation = 1",
        settings={"mutations_sync": 2},
    )

    seen: list[tuple[int, int]] = []

    def read_in_a_loop(stop: threading.Event) -> None:
        while not stop.is_set():
            row = clickhouse.query(
                "SELECT count(), countIf(language IS NOT NULL) FROM transcripts"
            ).result_rows[0]
            seen.append((int(row[0]), int(row[1])))
            time.sleep(0.002)

    stop = threading.Event()
    reader = threading.Thread(target=read_in_a_loop, args=(stop,))
    reader.start()
    try:
        plan = await _plan(kafka_bootstrap, topics, store, group, resume=False)
        await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store)
        await asyncio.sleep(0.1)
    finally:
        stop.set()
        reader.join()

    assert seen[0] == (40, 0)
    assert seen[-1] == (40, tagged)
    assert set(seen) == {(40, 0), (40, tagged)}, "no empty or half-built generation"
    switched = seen.index((40, tagged))
    assert all(s == (40, tagged) for s in seen[switched:]), "one switch, never back"
    rows = clickhouse.query("SELECT session_id, language FROM transcripts").result_rows
    languages = {str(session): language for session, language in rows}
    assert languages == {f"lang-{n}": None if n % 2 else "en-US" for n in range(40)}


async def test_until_rebuilds_the_store_as_it_was_and_keeps_it_frozen_even_resumed(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store = Store(clickhouse)
    group = unique_name("live")
    await _publish(kafka_bootstrap, topics, 600)
    await asyncio.sleep(0.2)
    then = datetime.now(UTC)
    await asyncio.sleep(0.2)
    await _publish(kafka_bootstrap, topics, 600, start=600)
    await _project_live(kafka_bootstrap, topics, store, group)

    plan = await _plan(kafka_bootstrap, topics, store, group, until=then)
    assert plan.events == 600
    assert "keep it frozen" in plan.describe()
    assert [g.number for g in store.generations.all()] == [1], "planning creates nothing"
    await _cancel_after_two_batches(plan, kafka_bootstrap, topics, store, max_batch=100)
    resumed = await _plan(kafka_bootstrap, topics, store, group, resume=True)
    assert resumed.targets == plan.targets, "the resumed replay stops where the first would have"
    summary = await rebuild(resumed, bootstrap=kafka_bootstrap, topics=topics, store=store)

    assert summary.generation.state == "frozen"
    assert summary.verification.found_rows["session_events"] == 600
    assert store.generations.current() == {p: 1 for p in PROJECTIONS}
    frozen = store.session_digests("session_events", 2)
    assert sum(rows for rows, _ in frozen.values()) == 600
    assert len(_contents(clickhouse)["session_events"]) == 1200


async def test_only_some_projections_are_rebuilt_and_the_rest_stay_shown(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await _live_store(kafka_bootstrap, topics, clickhouse, 900)
    before = _contents(clickhouse)

    with pytest.raises(GenerationError, match=r"unknown projections \['transcript'\]"):
        await _plan(kafka_bootstrap, topics, store, group, projections=("transcript",))
    plan = await _plan(kafka_bootstrap, topics, store, group, projections=("transcripts",))
    summary = await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store)

    assert set(summary.verification.found_rows) == {"transcripts"}
    assert store.generations.current() == {
        "transcripts": 2,
        "audio_chunks": 1,
        "session_events": 1,
    }
    assert store.generations.get(1).state == "live"
    assert store.generations.shown() == {1: ("audio_chunks", "session_events"), 2: ("transcripts",)}
    assert _contents(clickhouse) == before
    await _publish(kafka_bootstrap, topics, 300, start=900)
    projectors = await live_projectors(
        bootstrap=kafka_bootstrap, topics=topics, base_group=group, store=store
    )
    assert [(p.generation, sorted(p.projections)) for p in projectors] == [
        (1, ["audio_chunks", "session_events"]),
        (2, ["transcripts"]),
    ]
    await _project_live(kafka_bootstrap, topics, store, group)
    after = _contents(clickhouse)
    assert len(after["session_events"]) == 1200
    assert len(after["transcripts"]) == 400


async def test_a_rebuild_that_would_take_sessions_from_readers_is_not_cut_over(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    """Topics that no longer hold what was projected from them (made again here; a new
    broker, a retention limit) replay into a generation that verifies against them, and was
    cut over: the readers lost every call the topics had forgotten."""
    store, group = await _live_store(kafka_bootstrap, topics, clickhouse, 600)
    before = _contents(clickhouse)
    await made_again(kafka_bootstrap, topics, partitions=TEST_PARTITIONS)
    await _publish(kafka_bootstrap, topics, 300, start=600)

    plan = await _plan(kafka_bootstrap, topics, store, group)
    with pytest.raises(SessionsLostError) as refused:
        await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store)
    said = str(refused.value)
    assert said.startswith("generation 2 lacks what readers are shown")
    for projection in PROJECTIONS:
        assert re.search(rf"{projection}: \d+ rows of 10 sessions \('session-000000'", said)
    assert "--resume --allow-loss" in said
    assert store.generations.current() == dict.fromkeys(PROJECTIONS, 1)
    assert _contents(clickhouse) == before
    assert store.generations.get(2).state == "verifying"

    resumed = await _plan(kafka_bootstrap, topics, store, group, resume=True)
    await rebuild(resumed, bootstrap=kafka_bootstrap, topics=topics, store=store, allow_loss=True)
    assert store.generations.current() == dict.fromkeys(PROJECTIONS, 2)
    assert len(_contents(clickhouse)["session_events"]) == 300


async def test_a_rebuild_that_would_take_part_of_calls_from_readers_is_not_cut_over(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    """Compaction or a retention limit through a call leaves the session in the topics with
    some of its events: every session is still there, but not all of its chunks."""
    store, group = await _live_store(kafka_bootstrap, topics, clickhouse, 600)
    await made_again(kafka_bootstrap, topics, partitions=TEST_PARTITIONS)
    events = realistic_events(600)
    async with EventPublisher(kafka_bootstrap, topics) as publisher:
        await publisher.publish_all(
            [e for n, e in enumerate(events) if not (isinstance(e, ChunkReady) and n % 2)]
        )

    plan = await _plan(kafka_bootstrap, topics, store, group)
    with pytest.raises(SessionsLostError) as refused:
        await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store)
    said = str(refused.value)
    assert "transcripts:" not in said
    assert re.search(r"audio_chunks: \d+ rows of 10 sessions", said), said
    assert re.search(r"session_events: \d+ rows of 10 sessions", said), said
    assert store.generations.current() == dict.fromkeys(PROJECTIONS, 1)


async def test_a_rebuild_fills_the_caches_of_its_generation_before_it_cuts_over(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    """Without a cache, every analytics read and page folds the store live until the first
    refresh after the cut-over has cached it (5 minutes at 1M sessions)."""
    store, group = await _live_store(kafka_bootstrap, topics, clickhouse, 900)
    FactsKeeper(clickhouse).refresh()
    reader = Reader(clickhouse, pointer_ttl_s=0.0)
    ((first, last),) = reader.rows("SELECT min(started_at), max(started_at) FROM transcripts")
    since = as_utc(first).replace(minute=0, second=0, microsecond=0)
    until = as_utc(last).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    before = metrics(reader, since=since, until=until)

    plan = await _plan(kafka_bootstrap, topics, store, group, projections=("transcripts",))
    await rebuild(
        plan,
        bootstrap=kafka_bootstrap,
        topics=topics,
        store=store,
        warm=lambda generation, stopping: warm(
            clickhouse, generation.number, generation.projections, stopping
        ),
    )
    shown = Generations.of(reader)
    assert shown == Generations(2, 1, 1)
    assert mark(reader, shown) is not None
    after = metrics(reader, since=since, until=until)
    assert after.rows == before.rows
    assert after.rows


async def test_live_projection_moves_to_the_new_generation_after_a_cut_over(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await _live_store(kafka_bootstrap, topics, clickhouse, 600)
    stop = asyncio.Event()
    live = _start_live(kafka_bootstrap, topics, store, group, stop)
    plan = await _plan(kafka_bootstrap, topics, store, group)
    await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store)
    await _publish(kafka_bootstrap, topics, 300, start=600)

    try:
        for _ in range(300):  # the store is polled: nothing signals "projected"
            if len(_contents(clickhouse)["session_events"]) >= 900:
                break
            await asyncio.sleep(0.1)
        assert len(_contents(clickhouse)["session_events"]) == 900
    finally:
        stop.set()
        await asyncio.wait_for(live, 30)
    assert store.generations.current() == {p: 2 for p in PROJECTIONS}


async def test_tstore_rebuild_runs_inside_the_process_that_owns_the_store(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await _live_store(kafka_bootstrap, topics, clickhouse, 600)
    service = RebuildService(
        bootstrap=kafka_bootstrap, topics=topics, store=store, base_group=group
    )
    stop = asyncio.Event()
    live = _start_live(kafka_bootstrap, topics, store, group, stop)
    try:
        async with serving(StoreState(store=store, rebuilds=service), queries=False) as url:
            env = {
                "TSTORE_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "TSTORE_TOPIC_PREFIX": topics.prefix,
                "TSTORE_CONSUMER_GROUP": group,
                "TSTORE_HTTP_PORT": url.rsplit(":", 1)[1],
                # Opening another chDB path in this process would fail: the CLI must not open it.
                "TSTORE_CLICKHOUSE_DSN": "chdb:///nonexistent/store",
            }
            dry = await asyncio.to_thread(
                CliRunner().invoke, app, ["rebuild", "--dry-run"], env=env
            )
            assert dry.exit_code == 0, dry.output
            assert "create generation 2" in dry.output
            done = await asyncio.to_thread(CliRunner().invoke, app, ["rebuild"], env=env)
            assert done.exit_code == 0, done.output
            assert "rebuilding inside the store's process" in done.output
            assert "generation 2 live: 600 events" in done.output
            assert store.generations.current() == {p: 2 for p in PROJECTIONS}
            refused = await asyncio.to_thread(
                CliRunner().invoke, app, ["rebuild", "--resume"], env=env
            )
            assert refused.exit_code == 1
            assert "no unfinished rebuild to resume" in refused.output
            listed = await asyncio.to_thread(CliRunner().invoke, app, ["generations"], env=env)
            assert listed.exit_code == 0, listed.output
            assert "retired" in listed.output
    finally:
        stop.set()
        await asyncio.wait_for(live, 30)


async def test_retention_drops_the_oldest_retired_generations_after_a_cut_over(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await _live_store(kafka_bootstrap, topics, clickhouse, 300)
    before = _contents(clickhouse)
    for _ in range(3):
        plan = await _plan(kafka_bootstrap, topics, store, group)
        await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store, keep_retired=1)
    states = {g.number: g.state for g in store.generations.all()}
    assert states == {1: "discarded", 2: "discarded", 3: "retired", 4: "live"}
    assert store.generations.size(1).rows == {}
    assert store.generations.size(3).rows["session_events"] == 300
    assert _contents(clickhouse) == before
