"""The store's own processes: ``serve`` (project and answer), ``project`` (only project), and
the ``demo`` that shows the whole path on the embedded defaults."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Annotated

import typer

from consumers.storage.clickhouse import Store, open_store
from service.process import Role, bind, check_exposure, run
from tstore.commands.common import (
    embedded_place,
    made_folder,
    one_line_errors,
    port_option,
    settings,
    until_signalled,
    writable_store,
)
from tstore.demo import run_demo
from tstore.devkafka import KAFKA_VERSION, DevKafka
from tstore.render import transcript
from tstore.settings import Settings

app = typer.Typer()
Host = Annotated[str | None, typer.Option(help="Listen here (default: TSTORE_HTTP_HOST).")]
Port = Annotated[int | None, port_option("Listen here (default: TSTORE_HTTP_PORT).")]


@app.command()
@one_line_errors
def serve(
    host: Host = None,
    port: Port = None,
    no_project: Annotated[
        bool,
        typer.Option(
            "--no-project",
            help="Only answer queries (with a ClickHouse server, beside `tstore project`).",
        ),
    ] = False,
) -> None:
    """Own the store: run the live projectors and answer the HTTP API until SIGINT/SIGTERM.

    In embedded mode (chDB) this is the one process that may open the store; every other
    command asks it. API docs at /docs, OpenAPI at /openapi.json.
    """
    _run(settings(), Role(project=not no_project), host, port)


@app.command()
@one_line_errors
def project(host: Host = None, port: Port = None) -> None:
    """Run the live projectors until SIGINT/SIGTERM, without the query API.

    It still answers /healthz, /readyz, /metrics and /v1/admin (rebuilds) on
    TSTORE_HTTP_PORT. With a ClickHouse server several can share the partitions.
    """
    _run(settings(), Role(project=True, queries=False), host, port)


def _listening(config: Settings, host: str | None, port: int | None) -> socket.socket:
    """The service's socket, bound before anything is created: a host off loopback without a
    token, or a port another process has, is refused with nothing left behind."""
    token = config.api_token.get_secret_value() if config.api_token else None
    check_exposure(host or config.http_host, token)
    return bind(host or config.http_host, config.http_port if port is None else port)


def _run(
    config: Settings,
    role: Role,
    host: str | None,
    port: int | None,
    sock: socket.socket | None = None,
) -> None:
    if sock is None:
        sock = _listening(config, host, port)
    writable_store(config)

    async def main() -> None:
        await run(
            config,
            until_signalled(),
            role=role,
            host=host or config.http_host,
            port=config.http_port if port is None else port,
            on_ready=lambda url: typer.echo(f"serving {url} (API docs: {url}docs)"),
            sock=sock,
        )

    asyncio.run(main())


@app.command()
@one_line_errors
def demo(
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the store afterwards until Ctrl-C.")
    ] = True,
    port: Port = None,
) -> None:
    """Start a local broker, publish calls with audio, project them, print one back from
    ClickHouse, then serve the store (the data lives under TSTORE_DATA_DIR/demo, the broker's
    log beside it in TSTORE_DATA_DIR/demo/kafka, so each run adds to the same store)."""
    config = settings()
    config = config.model_copy(update={"data_dir": config.data_dir / "demo"})
    # Refused before any work: a port it cannot serve on, then a store another process holds.
    sock = _listening(config, None, port) if serve_after else None
    made_folder(config.data_dir, "TSTORE_DATA_DIR")
    log_dir = config.data_dir / "kafka"
    store = open_store(config.dsn, config.clickhouse_database)
    unpaired = _store_without_log(config, store, log_dir)
    if unpaired is not None:
        typer.secho(
            f"{unpaired} was made by an earlier demo whose broker kept no log: its calls are "
            f"not in {log_dir}, so a rebuild refuses to cut over to a generation without them "
            f"(--allow-loss would drop them). Remove {config.data_dir} to start afresh.",
            fg=typer.colors.YELLOW,
            err=True,
        )
    with DevKafka(log_dir) as broker:
        typer.echo(f"Kafka {KAFKA_VERSION} broker at {broker.bootstrap} (log in {log_dir})")
        config = config.model_copy(update={"kafka_bootstrap": broker.bootstrap})
        ran = asyncio.run(run_demo(config, store=store))
        typer.echo(f"Session {ran.session_id}, read back from ClickHouse ({config.dsn}):")
        typer.echo(transcript(ran.turns))
        if sock is not None:
            bound = sock.getsockname()[1]
            asking = "" if bound == config.http_port else f"TSTORE_HTTP_PORT={bound} "
            typer.echo(
                f"Serving the store until Ctrl-C ({asking}tstore sessions / search ask it too)."
            )
            typer.echo(f"Play a simulated call's first answer: {ran.clip_path} on the URL below.")
            _run(config, Role(), None, port, sock)


def _store_without_log(config: Settings, store: Store, log_dir: Path) -> Path | None:
    """The demo's embedded store, if it holds sessions but its broker's log is not beside it (a
    demo older than the log's place made it): Kafka no longer holds what it holds. A store
    without sessions is no loss: the demo opens (so makes) its store before its broker formats
    its log, and a run that failed in between (no Java) leaves an empty one."""
    place = embedded_place(config)
    if place is None or (log_dir / "kraft" / "meta.properties").exists():
        return None
    held = store.client.query("SELECT 1 FROM session_events_generations LIMIT 1").result_rows
    return place[0] if held else None
