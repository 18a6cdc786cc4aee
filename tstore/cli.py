"""The ``tstore`` command. Settings come from ``TSTORE_*`` variables (see ``tstore.settings``)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Annotated

import typer

from consumers.metrics import ProjectorMetrics
from consumers.projector import Projector
from consumers.storage.clickhouse import Store, connect
from consumers.topics_admin import ensure_topics
from producers import TranscriptProducer
from producers.chunks import LocalChunkStore
from producers.simulator import simulate as run_simulation
from tstore.demo import format_transcript, run_demo
from tstore.devkafka import KAFKA_VERSION, DevKafka, MissingToolError, resolve_jars
from tstore.logging import configure_logging
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
        async with Projector(
            bootstrap=settings.kafka_bootstrap,
            topics=settings.topics,
            group_id=settings.consumer_group,
            store=store,
            session_timeout_ms=settings.consumer_session_timeout_ms,
            metrics=metrics,
        ) as projector:
            await projector.run(stop)

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
