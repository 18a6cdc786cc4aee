"""The store's own processes: ``serve`` (project and answer), ``project`` (only project), and
the ``demo`` that shows the whole path on the embedded defaults."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from service.process import Role, check_exposure, run
from tstore.commands.common import (
    made_folder,
    one_line_errors,
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
Port = Annotated[
    int | None, typer.Option(min=0, max=65535, help="Listen here (default: TSTORE_HTTP_PORT).")
]


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


def _run(config: Settings, role: Role, host: str | None, port: int | None) -> None:
    token = config.api_token.get_secret_value() if config.api_token else None
    check_exposure(host or config.http_host, token)  # refused before the store is created
    writable_store(config)

    async def main() -> None:
        await run(
            config,
            until_signalled(),
            role=role,
            host=host or config.http_host,
            port=config.http_port if port is None else port,
            on_ready=lambda url: typer.echo(f"serving {url} (API docs: {url}docs)"),
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
    ClickHouse, then serve the store (the data lives under TSTORE_DATA_DIR/demo)."""
    config = settings()
    config = config.model_copy(update={"data_dir": config.data_dir / "demo"})
    made_folder(config.data_dir, "TSTORE_DATA_DIR")
    with DevKafka() as broker:
        typer.echo(f"Kafka {KAFKA_VERSION} broker at {broker.bootstrap}")
        config = config.model_copy(update={"kafka_bootstrap": broker.bootstrap})
        ran = asyncio.run(run_demo(config))
        typer.echo(f"Session {ran.session_id}, read back from ClickHouse ({config.dsn}):")
        typer.echo(transcript(ran.turns))
        if serve_after:
            typer.echo("Serving the store until Ctrl-C (tstore sessions / search ask it too).")
            typer.echo(f"Play a simulated call's first answer: {ran.clip_path} on the URL below.")
            _run(config, Role(), config.http_host, port)
