"""Rebuilding projections into a new generation while readers keep reading the old one
(what it checks before its cut-over: ``test_rebuild_guards``)."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.client import Client
from fastavro import schemaless_writer
from typer.testing import CliRunner

from consumers.admin import RebuildService
from consumers.live import live_projectors, run_live
from consumers.projections import PROJECTIONS
from consumers.rebuild import RebuildPlan, rebuild
from consumers.storage.clickhouse import Store
from consumers.storage.generations import GenerationError
from consumers.storage.session_facts import GENERATION_CACHES
from producers.kafka import kafka_producer
from queries.facts import FactsKeeper
from schemas import EventCodec, Topics, TurnStopped
from schemas.single_object import frame
from service.state import StoreState
from tests.conftest import unique_name
from tests.events import turn_pair
from tests.integration.rebuild_support import (
    contents,
    live_store,
    project_live,
    publish,
    rebuild_plan,
)
from tests.integration.serving import serving
from tstore.cli import app

pytestmark = pytest.mark.integration

EVENTS = 3_000


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


async def test_readers_never_see_the_rebuild_until_one_cut_over_shows_all_of_it(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await live_store(kafka_bootstrap, topics, clickhouse, EVENTS)
    before = contents(clickhouse)
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
    plan = await rebuild_plan(kafka_bootstrap, topics, store, group, resume=False)
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
    assert contents(clickhouse) == before

    with pytest.raises(GenerationError, match="readers see"):
        store.generations.drop(2)
    FactsKeeper(clickhouse).refresh()  # and of generation 2
    store.generations.drop(1)
    assert store.generations.size(1).rows == {}
    assert contents(clickhouse) == before
    cached = "SELECT DISTINCT generation FROM {} FINAL ORDER BY generation"
    for table in GENERATION_CACHES:
        kept = clickhouse.query(cached.format(table)).result_rows
        # a whole-store fold notes only the inserts before its mark, which may be none here
        allowed = [[(2,)], []] if table == "session_facts_whole_folds" else [[(2,)]]
        assert kept in allowed, table


async def test_a_rebuild_cancelled_midway_resumes_to_what_a_clean_rebuild_gives(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await live_store(kafka_bootstrap, topics, clickhouse, 12_000)
    clean = contents(clickhouse)

    async def plan(resume: bool) -> RebuildPlan:
        return await rebuild_plan(kafka_bootstrap, topics, store, group, resume=resume)

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
    assert contents(clickhouse) == clean


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
    await project_live(kafka_bootstrap, topics, store, group)
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
        plan = await rebuild_plan(kafka_bootstrap, topics, store, group, resume=False)
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
    await publish(kafka_bootstrap, topics, 600)
    await asyncio.sleep(0.2)
    then = datetime.now(UTC)
    await asyncio.sleep(0.2)
    await publish(kafka_bootstrap, topics, 600, start=600)
    await project_live(kafka_bootstrap, topics, store, group)

    plan = await rebuild_plan(kafka_bootstrap, topics, store, group, until=then)
    assert plan.events == 600
    assert "keep it frozen" in plan.describe()
    assert [g.number for g in store.generations.all()] == [1], "planning creates nothing"
    await _cancel_after_two_batches(plan, kafka_bootstrap, topics, store, max_batch=100)
    resumed = await rebuild_plan(kafka_bootstrap, topics, store, group, resume=True)
    assert resumed.targets == plan.targets, "the resumed replay stops where the first would have"
    summary = await rebuild(resumed, bootstrap=kafka_bootstrap, topics=topics, store=store)

    assert summary.generation.state == "frozen"
    assert summary.verification.found_rows["session_events"] == 600
    assert store.generations.current() == {p: 1 for p in PROJECTIONS}
    frozen = store.session_digests("session_events", 2)
    assert sum(rows for rows, _ in frozen.values()) == 600
    assert len(contents(clickhouse)["session_events"]) == 1200


async def test_only_some_projections_are_rebuilt_and_the_rest_stay_shown(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await live_store(kafka_bootstrap, topics, clickhouse, 900)
    before = contents(clickhouse)

    with pytest.raises(GenerationError, match=r"unknown projections \['transcript'\]"):
        await rebuild_plan(kafka_bootstrap, topics, store, group, projections=("transcript",))
    plan = await rebuild_plan(kafka_bootstrap, topics, store, group, projections=("transcripts",))
    summary = await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store)

    assert set(summary.verification.found_rows) == {"transcripts"}
    assert store.generations.current() == {
        "transcripts": 2,
        "audio_chunks": 1,
        "session_events": 1,
    }
    assert store.generations.get(1).state == "live"
    assert store.generations.shown() == {1: ("audio_chunks", "session_events"), 2: ("transcripts",)}
    assert contents(clickhouse) == before
    await publish(kafka_bootstrap, topics, 300, start=900)
    projectors = await live_projectors(
        bootstrap=kafka_bootstrap, topics=topics, base_group=group, store=store
    )
    assert [(p.generation, sorted(p.projections)) for p in projectors] == [
        (1, ["audio_chunks", "session_events"]),
        (2, ["transcripts"]),
    ]
    await project_live(kafka_bootstrap, topics, store, group)
    after = contents(clickhouse)
    assert len(after["session_events"]) == 1200
    assert len(after["transcripts"]) == 400


async def test_live_projection_moves_to_the_new_generation_after_a_cut_over(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await live_store(kafka_bootstrap, topics, clickhouse, 600)
    stop = asyncio.Event()
    live = _start_live(kafka_bootstrap, topics, store, group, stop)
    plan = await rebuild_plan(kafka_bootstrap, topics, store, group)
    await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store)
    await publish(kafka_bootstrap, topics, 300, start=600)

    try:
        for _ in range(300):  # the store is polled: nothing signals "projected"
            if len(contents(clickhouse)["session_events"]) >= 900:
                break
            await asyncio.sleep(0.1)
        assert len(contents(clickhouse)["session_events"]) == 900
    finally:
        stop.set()
        await asyncio.wait_for(live, 30)
    assert store.generations.current() == {p: 2 for p in PROJECTIONS}


async def test_tstore_rebuild_runs_inside_the_process_that_owns_the_store(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    store, group = await live_store(kafka_bootstrap, topics, clickhouse, 600)
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
    store, group = await live_store(kafka_bootstrap, topics, clickhouse, 300)
    before = contents(clickhouse)
    for _ in range(3):
        plan = await rebuild_plan(kafka_bootstrap, topics, store, group)
        await rebuild(plan, bootstrap=kafka_bootstrap, topics=topics, store=store, keep_retired=1)
    states = {g.number: g.state for g in store.generations.all()}
    assert states == {1: "discarded", 2: "discarded", 3: "retired", 4: "live"}
    assert store.generations.size(1).rows == {}
    assert store.generations.size(3).rows["session_events"] == 300
    assert contents(clickhouse) == before
