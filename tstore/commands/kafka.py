"""Kafka for development and tests: a local broker, the topics, simulated calls."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Annotated

import typer
from aiokafka.errors import KafkaConnectionError

from audio.stores import ChunkStore, ChunkStoreUrlError, ChunkWriteError, open_chunk_store
from consumers.topics_admin import ensure_topics
from producers import ProducerStats, TranscriptProducer
from producers.kafka import connection_problem
from producers.simulator import simulate as run_simulation
from tstore.commands.common import (
    fail,
    made_folder,
    one_line_errors,
    port_option,
    refuse_taken_port,
    serve_until_signalled,
    settings,
)
from tstore.devkafka import KAFKA_VERSION, DevKafka, resolve_jars
from tstore.settings import Settings

app = typer.Typer()

WRITE_CHECK = "tstore-simulate-write-check"
"""The key of an empty object ``tstore simulate`` writes to the chunk store before it publishes
anything (overwritten at each run)."""
_CREDENTIALS = (
    "a bucket's credentials and endpoint come from the AWS_*, GOOGLE_* or AZURE_* variables"
)


@app.command("dev-kafka")
@one_line_errors
def dev_kafka(
    port: Annotated[int, port_option("Client port; 0 picks a free one.")] = 0,
    resolve_only: Annotated[
        bool, typer.Option("--resolve-only", help="Only fetch the jars into the cache.")
    ] = False,
    sasl_ssl: Annotated[
        bool, typer.Option("--sasl-ssl", help="Also listen with TLS and a SCRAM login.")
    ] = False,
) -> None:
    """Run a local Apache Kafka broker (KRaft, one JVM) until interrupted."""
    if resolve_only:
        typer.echo(f"Kafka {KAFKA_VERSION} jars: {resolve_jars()}")
        return
    if port:
        refuse_taken_port(port, "broker")
    broker = DevKafka(port=port or None, sasl_ssl=sasl_ssl)
    started = time.monotonic()
    serve_until_signalled(broker, lambda: _announce(broker, sasl_ssl, started))


def _announce(broker: DevKafka, sasl_ssl: bool, started: float) -> None:
    typer.echo(f"Kafka {KAFKA_VERSION} ready in {time.monotonic() - started:.1f}s")
    typer.echo(f"bootstrap: {broker.bootstrap}")
    if sasl_ssl:
        secured = broker.client_security()
        typer.echo("SASL_SSL listener, for these settings:")
        for name, value in {
            "BOOTSTRAP": broker.sasl_ssl_bootstrap,
            "SECURITY_PROTOCOL": secured.security_protocol,
            "SASL_MECHANISM": secured.sasl_mechanism,
            "USERNAME": secured.username,
            "PASSWORD": secured.password,
            "CA_FILE": secured.ca_file,
        }.items():
            typer.echo(f"  TSTORE_KAFKA_{name}={value}")


@app.command("create-topics")
@one_line_errors
def create_topics() -> None:
    """Create the event topics (idempotent), with TSTORE_TOPIC_PARTITIONS partitions."""
    config = settings()
    asyncio.run(
        ensure_topics(
            config.kafka_bootstrap,
            config.topics,
            partitions=config.topic_partitions,
            security=config.kafka_security,
        )
    )
    typer.echo(f"topics ready: {', '.join(config.topics.all)}")


@app.command()
@one_line_errors
def simulate(
    sessions: Annotated[int, typer.Option(min=1, help="Calls to simulate.")] = 10,
    rate: Annotated[
        float, typer.Option(min=0, help="Events per second, all calls; 0: no pacing.")
    ] = 200,
    turns: Annotated[int, typer.Option(min=1, help="Turns per call.")] = 12,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Random seed: the same seed gives the same calls, under new session ids."
        ),
    ] = None,
    audio: Annotated[bool, typer.Option(help="Write both tracks as WAV chunks.")] = True,
) -> None:
    """Publish simulated calls through the real producer (turns, barge-ins, audio chunks).

    The spool and, unless TSTORE_CHUNK_STORE says otherwise, the chunks go under
    TSTORE_DATA_DIR. It fails unless Kafka took every event, and before it publishes any when
    the chunk store refuses an empty object written first.
    """
    config = settings()
    made_folder(config.data_dir, "TSTORE_DATA_DIR")
    chunks = _writable_chunks(config) if audio else None
    chosen = secrets.randbits(32) if seed is None else seed

    async def main() -> tuple[TranscriptProducer, list[str]]:
        await _reachable(config)
        async with TranscriptProducer(
            config.kafka_bootstrap,
            bot_id="simulator",
            framework="simulator",
            topics=config.topics,
            spool_dir=config.data_dir / "spool",
            kafka_security=config.kafka_security,
        ) as producer:
            ids = await run_simulation(
                producer, sessions=sessions, rate=rate, turns=turns, seed=chosen, chunks=chunks
            )
        return producer, ids

    try:
        producer, ids = asyncio.run(main())
    except ChunkWriteError as exc:
        raise fail(
            f"{_chunk_store(config)} failed during the run ({exc.why}): the events published "
            "before it stay on the topics, their calls open until abandoned"
        ) from None
    stats = producer.stats
    typer.echo("\n".join(ids))
    typer.echo(
        f"{sessions} calls (seed {chosen}): {stats.published} events published, "
        f"{stats.spooled} spooled, {stats.dropped} dropped"
    )
    shortfall = undelivered(stats)
    if shortfall:
        raise fail(
            f"Kafka at {config.kafka_bootstrap} (TSTORE_KAFKA_BOOTSTRAP) did not take every "
            f"event: {shortfall} (the spool is {config.data_dir / 'spool'}, for the next "
            "`tstore simulate` to deliver)"
        )


def _writable_chunks(config: Settings) -> ChunkStore:
    """The chunk store, once an object is written to it: a store that refuses writes would
    fail the run after a call's first events were published, leaving its session open."""
    try:
        chunks = open_chunk_store(config.chunks)
        chunks.put(WRITE_CHECK, b"")
    except (ChunkStoreUrlError, ChunkWriteError) as exc:
        why = exc.why if isinstance(exc, ChunkWriteError) else str(exc)
        raise fail(
            f"{_chunk_store(config)} cannot be written ({why}); nothing was published"
            + ("" if config.chunks.startswith("file:") else f" ({_CREDENTIALS})")
        ) from None
    return chunks


def _chunk_store(config: Settings) -> str:
    setting = "TSTORE_CHUNK_STORE" if config.chunk_store else "TSTORE_DATA_DIR"
    return f"the chunk store {config.chunks} ({setting})"


def undelivered(stats: ProducerStats) -> str | None:
    """What a closed producer still holds or lost, or None when Kafka took it all.

    Not ``stats.spooled``: that counts every event that went through the spool, and a burst
    beyond the in-memory queue goes through it even when Kafka takes all of it.
    """
    left = {
        "in memory": stats.backlog,
        "bytes in the spool": stats.spool_bytes,
        "dropped": stats.dropped,
    }
    if not any(left.values()):
        return None
    return ", ".join(f"{count} {what}" for what, count in left.items())


async def _reachable(config: Settings) -> None:
    """The producer would take every event while Kafka is away (spooling it for later) and
    the run would look like a success; a simulation wants them on the topics now."""
    problem = await connection_problem(config.kafka_bootstrap, config.kafka_security)
    if problem is not None:
        raise KafkaConnectionError(f"{config.kafka_bootstrap}: {problem}")
