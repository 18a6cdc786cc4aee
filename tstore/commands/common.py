"""What every command shares: settings and logging, one-line failures, signals, and reading
the store through the process that owns it."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from aiokafka.errors import KafkaError

from consumers.admin import KafkaUnreachableError
from consumers.storage.clickhouse import (
    Store,
    StoreUnavailableError,
    embedded_path,
    open_store,
)
from consumers.storage.generations import GenerationError
from queries import BadQueryError, NotFoundError, Reader
from queries.models import in_utc
from service.client import ServiceError, StoreClient
from service.process import ServeError
from tstore.devkafka import MissingToolError
from tstore.devserver import LocalServer
from tstore.logging import configure_logging
from tstore.settings import BadSettingError, Settings

P = ParamSpec("P")
T = TypeVar("T")

EXPECTED: tuple[type[Exception], ...] = (
    BadQueryError,
    GenerationError,
    KafkaUnreachableError,
    MissingToolError,
    NotFoundError,
    ServeError,
    ServiceError,
    StoreUnavailableError,
)
"""Failures a user can cause or fix: said in one line, never as a traceback."""


def settings() -> Settings:
    try:
        loaded = Settings.load()
    except BadSettingError as exc:
        raise fail(str(exc)) from None  # the same line, in the command line's red
    configure_logging(loaded.log_format, secrets=loaded.secrets)
    return loaded


def fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def one_line_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Expected failures end the command with their message and exit code 1."""

    @functools.wraps(command)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except EXPECTED as exc:
            raise fail(str(exc)) from None
        except KafkaError as exc:
            raise fail(
                f"Kafka did not answer ({exc}): is a broker running at TSTORE_KAFKA_BOOTSTRAP, "
                "and do the TSTORE_KAFKA_* security settings match its listener?"
            ) from None

    return guarded


def time_option(help_text: str) -> Any:
    """Every time option is read by ``moment`` and says so alike, so that no command reads a
    time differently from what its help promises."""
    return typer.Option(parser=moment, help=f"{help_text} ISO 8601; UTC if it names no zone.")


def port_option(help_text: str) -> Any:
    """Every port option refuses, naming itself, a number no socket can take: past 65535 the
    bind of a ``dev-*`` server failed with a traceback."""
    return typer.Option(min=0, max=65535, help=help_text)


def moment(text: str) -> datetime:
    """ISO 8601, in UTC when it names no zone (as every time option's help promises), read as
    the store's service reads it (``AskedTime``): the local path must answer as the service
    would. So a time outside what the store holds (``--since 1800-01-01``) is taken, as the
    service takes it, and the queries answer for it."""
    try:
        given = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time, such as 2026-11-01 or 2026-11-01T09:30:00+02:00"
        ) from None
    try:
        return in_utc(given)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def until_signalled() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def refuse_taken_port(port: int, what: str) -> None:
    """A client given ``port`` would reach whatever already listens there, not our server."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise typer.BadParameter(
                f"{port} is in use by another process (another {what}?), so a client would "
                "reach that one; stop it or choose another port (0 picks a free one)",
                param_hint="--port",
            ) from None


def serve_until_signalled(server: LocalServer, announce: Callable[[], None]) -> None:
    """Start a local server, ``announce`` how to reach it, and keep it until Ctrl-C or
    SIGTERM; its folders are removed either way."""
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.start()
        announce()
        sys.stdout.flush()
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _exit_on_signal(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C."""
    raise SystemExit(128 + signum)


def client(config: Settings) -> StoreClient:
    token = config.api_token.get_secret_value() if config.api_token else None
    return StoreClient(config.service_url, token=token)


def read(
    config: Settings,
    remote: Callable[[StoreClient], T],
    local: Callable[[Reader], T],
) -> T:
    """Ask the running store when one answers queries; otherwise open the store here (which
    fails with a one-line reason when another process holds it, or when there is none)."""
    with client(config) as service:
        health = service.health()
        if health is not None and health.queries:
            return remote(service)
        if health is not None:
            _refuse_held_without_queries(config, service.base_url)
    store = existing_store(config)
    return local(Reader(store.client, abandoned_after=timedelta(seconds=config.abandoned_after_s)))


def _refuse_held_without_queries(config: Settings, url: str) -> None:
    """``tstore project`` answers no queries: asked for a session it said only "Not Found",
    as if the session were missing. It holds an embedded store, which this process then
    cannot open either; a server's store is read here instead, as when nothing answers."""
    if embedded_place(config) is not None:
        raise fail(
            f"the process answering at {url} (TSTORE_HTTP_PORT) is `tstore project`, which "
            "serves no queries and holds the embedded store: stop it and run `tstore serve` "
            "(which projects too), or set TSTORE_HTTP_PORT to a `tstore serve`'s port"
        )


def existing_store(config: Settings) -> Store:
    """The store, opened here, if it exists (see ``refuse_no_store``)."""
    refuse_no_store(config)
    return open_store(config.dsn, config.clickhouse_database)


def refuse_no_store(config: Settings) -> None:
    """Opening an embedded store creates its folder: a read or a rebuild that did would leave
    an empty store behind a mistyped TSTORE_DATA_DIR and answer from it (or rebuild nothing
    into it) as if nothing had happened."""
    place = embedded_place(config)
    if place is not None:
        folder, setting = place
        try:
            found = folder.is_dir()
        except OSError as exc:
            raise fail(f"{setting}: cannot read {folder}: {exc.strerror}") from None
        if not found:
            blocked = _not_a_folder(folder)
            raise fail(
                f"{setting}: {blocked} is a file, not a folder"
                if blocked
                else f"no store at {folder} ({setting}) and none answers at "
                f"{config.service_url}: `tstore serve` or `tstore project` creates one there "
                "(`tstore demo` shows one, under TSTORE_DATA_DIR/demo)"
            )


def writable_store(config: Settings) -> None:
    """For the commands that write to the store (``serve`` and ``project`` create it, a
    rebuild here needs it there): a place the engine could not use is said before the engine
    fails on it."""
    place = embedded_place(config)
    if place is not None:
        made_folder(*place)


def made_folder(folder: Path, setting: str) -> None:
    """Create ``folder`` before anything is written under it, so that ``setting`` pointing
    at a file or somewhere this user cannot write is one line naming it, not an OSError
    from deep inside the engine or the producer's spool."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocked = _not_a_folder(folder)
        why = f"{blocked} is a file, not a folder" if blocked else exc.strerror
        raise fail(f"{setting}: cannot create {folder}: {why}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise fail(f"{setting}: {folder} is not writable by this user")


def embedded_place(config: Settings) -> tuple[Path, str] | None:
    """The embedded store's folder and the setting that chose it; None for a server."""
    path = embedded_path(config.dsn)
    if path is None:
        return None
    return path, "TSTORE_CLICKHOUSE_DSN" if config.clickhouse_dsn else "TSTORE_DATA_DIR"


def _not_a_folder(path: Path) -> Path | None:
    """The first of ``path`` and its parents that exists as something other than a folder."""
    for step in reversed((path, *path.parents)):
        if os.path.lexists(step) and not step.is_dir():
            return step
    return None
