"""Object storage for development and tests: local servers of the S3, GCS and Azure Blob APIs
for the chunk stores, each printing the variables that reach it."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from tstore.commands.common import (
    one_line_errors,
    port_option,
    refuse_taken_port,
    serve_until_signalled,
)
from tstore.devazure import AZURITE_VERSION, DevAzure, resolve_azurite
from tstore.devgcs import FAKE_GCS_SERVER_VERSION, DevGcs, resolve_binary
from tstore.devs3 import S3PROXY_VERSION, DevS3, resolve_jars
from tstore.devserver import ObjectServer

app = typer.Typer()

Port = Annotated[int, port_option("Port; 0 picks a free one.")]
Bucket = Annotated[str, typer.Option(help="A bucket (or container) to create for the chunks.")]
DataDir = Annotated[
    Path | None,
    typer.Option(help="Keep the buckets in this folder; default: a temporary one."),
]
ResolveOnly = Annotated[
    bool, typer.Option("--resolve-only", help="Only fetch the server into the cache.")
]


def _command(
    name: str,
    title: str,
    make: Callable[[Path | None, int | None], ObjectServer],
    resolve: Callable[[], Path],
    help_text: str,
) -> None:
    """One ``tstore dev-*`` command: the three differ only in the server they run."""

    def command(
        port: Port = 0,
        bucket: Bucket = "tstore-chunks",
        data_dir: DataDir = None,
        resolve_only: ResolveOnly = False,
    ) -> None:
        if resolve_only:
            typer.echo(f"{title}: {resolve()}")
            return
        if port:
            refuse_taken_port(port, "server")
        _serve(make(data_dir, port or None), bucket, title)

    command.__doc__ = help_text
    app.command(name)(one_line_errors(command))


def _serve(server: ObjectServer, bucket: str, title: str) -> None:
    started = time.monotonic()

    def announce() -> None:
        try:
            server.create_bucket(bucket)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--bucket") from None
        typer.echo(f"{title} ready in {time.monotonic() - started:.1f}s")
        typer.echo(f"endpoint: {server.endpoint}, data in {server.data_dir}")
        typer.echo("chunk stores reach it with these settings:")
        for name, value in server.client_env().items():
            typer.echo(f"  {name}={shlex.quote(value)}")
        typer.echo(f"  TSTORE_CHUNK_STORE={server.scheme}://{bucket}/")

    serve_until_signalled(server, announce)


_command(
    "dev-s3",
    f"s3proxy {S3PROXY_VERSION}",
    lambda data_dir, port: DevS3(data_dir, port=port),
    resolve_jars,
    "Run a local S3 API server (s3proxy, one JVM) until interrupted; its buckets are folders "
    "on disk.",
)
_command(
    "dev-gcs",
    f"fake-gcs-server {FAKE_GCS_SERVER_VERSION}",
    lambda data_dir, port: DevGcs(data_dir, port=port),
    resolve_binary,
    "Run a local Google Cloud Storage API server (fake-gcs-server) until interrupted. It "
    "takes no writes from obstore (it lacks the XML API's object PUT): for reading chunks.",
)
_command(
    "dev-azure",
    f"Azurite {AZURITE_VERSION}",
    lambda data_dir, port: DevAzure(data_dir, port=port),
    resolve_azurite,
    "Run a local Azure Blob Storage API server (Azurite's blob service) until interrupted.",
)
