"""The ``tstore`` command. Settings come from ``TSTORE_*`` variables (see ``tstore.settings``)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka import TopicPartition
from rich.console import Console
from rich.table import Table

from consumers.admin import RebuildService, serve
from consumers.live import run_live
from consumers.metrics import ProjectorMetrics
from consumers.rebuild import RebuildPlan
from consumers.storage.clickhouse import Store, connect
from consumers.storage.generations import GenerationError
from consumers.topics_admin import ensure_topics
from producers import TranscriptProducer
from producers.chunks import LocalChunkStore
from producers.simulator import simulate as run_simulation
from schemas.compatibility import PUBLISHED_FILE, problems, unpublished
from schemas.registry import SCHEMA_DIR, SchemaFolderError, SchemaRegistry
from tstore.admin_client import AdminClient, AdminError
from tstore.demo import format_transcript, run_demo
from tstore.devkafka import KAFKA_VERSION, DevKafka, MissingToolError, resolve_jars
from tstore.logging import configure_logging
from tstore.progress import RebuildProgress
from tstore.settings import Settings

app = typer.Typer(
    help="transcript-store: voice-bot conversations as events on Kafka, projected into ClickHouse.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_format)
    return settings


def _until_signalled() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


@app.command("dev-kafka")
def dev_kafka(
    port: Annotated[int, typer.Option(help="Client port; 0 picks a free one.")] = 0,
    resolve_only: Annotated[
        bool, typer.Option("--resolve-only", help="Only fetch the jars into the cache.")
    ] = False,
) -> None:
    """Run a local Apache Kafka broker (KRaft, one JVM) until interrupted."""
    try:
        if resolve_only:
            typer.echo(f"Kafka {KAFKA_VERSION} jars: {resolve_jars()}")
            return
        broker = DevKafka(port=port or None)
        started = time.monotonic()
        broker.start()
    except MissingToolError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"Kafka {KAFKA_VERSION} ready in {time.monotonic() - started:.1f}s")
    typer.echo(f"bootstrap: {broker.bootstrap}")
    sys.stdout.flush()
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        broker.close()


@app.command("create-topics")
def create_topics() -> None:
    """Create the event topics (idempotent), with TSTORE_TOPIC_PARTITIONS partitions."""
    settings = _settings()
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap, settings.topics, partitions=settings.topic_partitions
        )
    )
    typer.echo(f"topics ready: {', '.join(settings.topics.all)}")


@app.command()
def project() -> None:
    """Run the projector (consumer group into ClickHouse) until SIGINT or SIGTERM.

    In embedded mode this process owns the chDB data path: nothing else may open it meanwhile.
    """
    settings = _settings()

    async def main() -> None:
        stop = _until_signalled()
        await ensure_topics(
            settings.kafka_bootstrap, settings.topics, partitions=settings.topic_partitions
        )
        store = Store(connect(settings.dsn, settings.clickhouse_database))
        metrics = ProjectorMetrics()
        if settings.metrics_port:
            metrics.serve(settings.metrics_port)
        admin = None
        if settings.admin_port:
            service = _rebuild_service(settings, store)
            admin = await serve(service, settings.admin_host, settings.admin_port)
        try:
            await _run_live(settings, store, stop, metrics)
        finally:
            if admin is not None:
                await admin.cleanup()

    asyncio.run(main())


@app.command()
def simulate(
    sessions: Annotated[int, typer.Option(min=1, help="Calls to simulate.")] = 10,
    rate: Annotated[
        float, typer.Option(min=0, help="Events per second, all calls; 0: no pacing.")
    ] = 200,
    turns: Annotated[int, typer.Option(min=1, help="Turns per call.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same calls.")] = 0,
    audio: Annotated[bool, typer.Option(help="Write both tracks as WAV chunks.")] = True,
) -> None:
    """Publish simulated calls through the real producer (turns, barge-ins, audio chunks)."""
    settings = _settings()

    async def main() -> TranscriptProducer:
        async with TranscriptProducer(
            settings.kafka_bootstrap,
            bot_id="simulator",
            framework="simulator",
            topics=settings.topics,
            spool_dir=settings.data_dir / "spool",
        ) as producer:
            chunks = LocalChunkStore(settings.data_dir / "chunks") if audio else None
            await run_simulation(
                producer, sessions=sessions, rate=rate, turns=turns, seed=seed, chunks=chunks
            )
        return producer

    stats = asyncio.run(main()).stats
    typer.echo(
        f"{sessions} calls: {stats.published} events published, {stats.spooled} spooled, "
        f"{stats.dropped} dropped"
    )


@app.command()
def transcript(session_id: str) -> None:
    """Print a session's transcript from the store."""
    settings = _settings()
    store = Store(connect(settings.dsn, settings.clickhouse_database))
    rows = store.session(session_id)
    if not rows:
        raise _fail(f"no turns for session {session_id!r} in {settings.clickhouse_database}")
    typer.echo(format_transcript(rows))


@app.command()
def incomplete() -> None:
    """List sessions with holes in their seq (events that never reached the store)."""
    settings = _settings()
    store = Store(connect(settings.dsn, settings.clickhouse_database))
    holes = store.incomplete_sessions()
    for session_id, seen, expected in holes:
        typer.echo(f"{session_id}: {seen} of {expected} events")
    if not holes:
        typer.echo("every session is complete")


@app.command()
def rebuild(
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Rebuild only this projection (repeatable)."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(
            help="Replay only events written before this time (UTC if no zone); the "
            "generation is kept frozen for inspection instead of being cut over."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be done.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Resume an unfinished rebuild.")] = False,
    discard: Annotated[bool, typer.Option("--discard", help="Drop an unfinished rebuild.")] = False,
    follow: Annotated[
        bool, typer.Option(help="After the cut-over, keep projecting live until signalled.")
    ] = False,
) -> None:
    """Replay the topics into a new generation, verify it, and cut readers over in one step.

    The live generation keeps serving and projecting meanwhile. When a ``tstore project``
    answers on its admin endpoint (TSTORE_ADMIN_PORT) the rebuild runs inside that process,
    which owns the store; otherwise this process opens the store and runs it.
    """
    settings = _settings()

    request = {
        "only": only,
        "until": until.isoformat() if until else None,
        "resume": resume,
        "discard": discard,
        "dry_run": dry_run,
    }
    admin = AdminClient(settings.admin_host, settings.admin_port)
    try:
        if settings.admin_port and admin.reachable():
            typer.echo(f"rebuilding inside the store's process (admin port {settings.admin_port})")
            asyncio.run(
                _drive_rebuild(
                    lambda body: asyncio.to_thread(admin.start, body),
                    lambda: asyncio.to_thread(admin.status),
                    request,
                )
            )
            return
        asyncio.run(_rebuild_here(settings, request, follow=follow))
    except (GenerationError, AdminError) as exc:
        raise _fail(str(exc)) from exc


def _rebuild_service(settings: Settings, store: Store) -> RebuildService:
    return RebuildService(
        bootstrap=settings.kafka_bootstrap,
        topics=settings.topics,
        store=store,
        base_group=settings.consumer_group,
        session_timeout_ms=settings.consumer_session_timeout_ms,
        max_batch=settings.batch_max_events,
        max_wait_ms=settings.batch_max_wait_ms,
        keep_retired=settings.retired_generations_kept,
    )


async def _run_live(
    settings: Settings, store: Store, stop: asyncio.Event, metrics: ProjectorMetrics
) -> None:
    await run_live(
        stop,
        bootstrap=settings.kafka_bootstrap,
        topics=settings.topics,
        base_group=settings.consumer_group,
        store=store,
        session_timeout_ms=settings.consumer_session_timeout_ms,
        max_batch=settings.batch_max_events,
        max_wait_ms=settings.batch_max_wait_ms,
        metrics=metrics,
    )


async def _rebuild_here(settings: Settings, request: dict[str, Any], *, follow: bool) -> None:
    """No process owns the store: this one does, for the rebuild (and after it with --follow)."""
    store = Store(connect(settings.dsn, settings.clickhouse_database))
    await asyncio.to_thread(store.migrate)
    service = _rebuild_service(settings, store)

    async def status() -> dict[str, Any]:
        return service.status()

    await _drive_rebuild(service.start, status, request)
    if follow and not request["dry_run"] and not request["discard"]:
        await _run_live(settings, store, _until_signalled(), ProjectorMetrics())


async def _drive_rebuild(
    start: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    status: Callable[[], Awaitable[dict[str, Any]]],
    request: dict[str, Any],
) -> None:
    """Start a rebuild (here or in the store's process, the same calls) and show its progress."""
    answer = await start(request)
    if "discarded" in answer:
        typer.echo(f"discarded generation {answer['discarded']}")
        return
    plan = RebuildPlan.from_dict(answer["plan"])
    typer.echo(plan.describe())
    if request["dry_run"]:
        return
    with RebuildProgress(plan) as progress:
        while True:
            state = await status()
            progress({TopicPartition(t, p): o for t, p, o in state["positions"]})
            if state["state"] != "running":
                break
            await asyncio.sleep(0.5)
    if state["state"] == "failed":
        raise GenerationError(state["error"])
    done = state["summary"]
    typer.echo(
        f"generation {done['generation']} {done['generation_state']}: {done['events']} events "
        f"in {done['seconds']:.1f}s ({done['events'] / max(done['seconds'], 1e-9):,.0f} "
        "events/s); rows "
        + ", ".join(f"{t} {n}" for t, n in done["rows"].items())
        + "; verified against the replay"
    )


generations_app = typer.Typer(help="List or drop projection generations.", no_args_is_help=False)
app.add_typer(generations_app, name="generations")


@generations_app.callback(invoke_without_command=True)
def generations(ctx: typer.Context) -> None:
    """List generations: state, what readers see, rows, size, created and cut-over times."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings()
    store = Store(connect(settings.dsn, settings.clickhouse_database))
    store.migrate()
    shown = store.generations.current()
    table = Table("gen", "state", "shown for", "rows", "size", "created", "cut over", "until")
    for generation in store.generations.all():
        size = store.generations.size(generation.number)
        table.add_row(
            str(generation.number),
            generation.state,
            ", ".join(p for p, n in shown.items() if n == generation.number) or "-",
            ", ".join(f"{t} {n}" for t, n in sorted(size.rows.items())) or "-",
            f"{size.bytes_on_disk / 1e6:.1f} MB",
            f"{generation.created_at:%Y-%m-%d %H:%M:%S}",
            f"{generation.cut_over_at:%Y-%m-%d %H:%M:%S}" if generation.cut_over_at else "-",
            generation.until.isoformat() if generation.until else "-",
        )
    Console().print(table)


@generations_app.command("drop")
def drop_generation(number: int) -> None:
    """Delete a generation's rows (refused for one that readers are shown)."""
    settings = _settings()
    store = Store(connect(settings.dsn, settings.clickhouse_database))
    try:
        store.generations.drop(number)
    except GenerationError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"dropped generation {number}")


schemas_app = typer.Typer(help="The event schemas.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")


@schemas_app.command("check")
def check_schemas(
    folder: Annotated[Path, typer.Option(help="The schema folder.")] = SCHEMA_DIR,
) -> None:
    """Fail if the schema folder would strand stored events (edited published versions,
    versions that cannot read each other)."""
    try:
        found = problems(folder)
        new = unpublished(folder)
    except SchemaFolderError as exc:
        raise _fail(str(exc)) from exc
    if found:
        raise _fail("\n".join(["schemas would strand stored events:", *found]))
    registry = SchemaRegistry.from_folder(folder)
    for name in registry.names():
        labels = ", ".join(f"v{v.version}" for v in registry.history(name))
        typer.echo(f"{name}: versions {labels} compatible")
    if new:
        typer.echo(f"not yet pinned in {PUBLISHED_FILE}: {', '.join(new)}")


@app.command()
def demo() -> None:
    """Start a local broker, publish a scripted call, project it, print it back from ClickHouse."""
    settings = _settings()
    try:
        with DevKafka() as broker:
            typer.echo(f"Kafka {KAFKA_VERSION} broker at {broker.bootstrap}")
            rows = asyncio.run(run_demo(settings, broker.bootstrap))
    except MissingToolError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(
        f"Session {rows[0].session_id}, read back from ClickHouse "
        f"({settings.dsn}, database {settings.clickhouse_database}):"
    )
    typer.echo(format_transcript(rows))
