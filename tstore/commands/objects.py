"""Object storage for development and tests: a local S3 API server for the chunk stores."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from tstore.commands.common import one_line_errors, refuse_taken_port, serve_until_signalled
from tstore.devs3 import S3PROXY_VERSION, DevS3, resolve_jars

app = typer.Typer()


@app.command("dev-s3")
@one_line_errors
def dev_s3(
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
    bucket: Annotated[str, typer.Option(help="A bucket to create for the chunks.")] = (
        "tstore-chunks"
    ),
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the buckets in this folder; default: a temporary one."),
    ] = None,
    resolve_only: Annotated[
        bool, typer.Option("--resolve-only", help="Only fetch the jars into the cache.")
    ] = False,
) -> None:
    """Run a local S3 API server (s3proxy, one JVM) until interrupted; its buckets are
    folders on disk."""
    if resolve_only:
        typer.echo(f"s3proxy {S3PROXY_VERSION} jars: {resolve_jars()}")
        return
    if port:
        refuse_taken_port(port, "server")
    server = DevS3(data_dir, port=port or None)
    try:
        server.create_bucket(bucket)
    except ValueError as exc:
        server.close()
        raise typer.BadParameter(str(exc), param_hint="--bucket") from None
    started = time.monotonic()
    serve_until_signalled(server, lambda: _announce(server, bucket, started))


def _announce(server: DevS3, bucket: str, started: float) -> None:
    typer.echo(f"s3proxy {S3PROXY_VERSION} ready in {time.monotonic() - started:.1f}s")
    typer.echo(f"endpoint: {server.endpoint}, buckets in {server.buckets_dir}")
    typer.echo("chunk stores reach it with these settings:")
    for name, value in server.client_env().items():
        typer.echo(f"  {name}={value}")
    typer.echo(f"  TSTORE_CHUNK_STORE=s3://{bucket}/")
