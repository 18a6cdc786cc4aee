"""The store's process: the HTTP service, the live projectors, and the store they share.

In embedded mode (chDB) only one process may open the store, so this is the one: it projects
and answers everyone else. With a ClickHouse server, ``tstore serve --no-project`` runs as
many query replicas as wanted beside ``tstore project`` processes that share the partitions.

The port is bound before anything else, so a clash is reported at once; the HTTP service
answers from then on (``/readyz`` is 503 until the store is open). A projector that loses
Kafka does not take the queries down: it is started again with backoff, and the answers say
the lag is unknown meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import os
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
import uvicorn

from consumers.lag import LagProbe
from consumers.storage.clickhouse import StoreUnavailableError, connect, open_store
from consumers.topics_admin import ensure_topics
from queries import Reader
from queries.errors import NotFoundError
from queries.facts import FactsKeeper
from queries.reader import ABANDONED_AFTER
from service.app import create_app
from service.state import StoreState
from tstore.components import (
    ignored_nice,
    keeper_connections,
    project_live,
    rebuild_service,
    writing_behind_reads,
)
from tstore.settings import Settings

log = structlog.get_logger(__name__)

RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits between attempts to start the projectors again; the last one repeats."""
GRACE_S = 15.0
"""How long the projectors have, once told to stop, to finish and commit their batches."""


FACTS_EVERY_S = 2.0
"""How often the analytics' cache takes in what was projected (``queries.facts``)."""
READERS = 4
"""Engine connections the queries share: each runs one query at a time, so this many run at
once (one connection held 4 concurrent clients to half the throughput)."""


def open_reader(dsn: str, database: str, abandoned_after: timedelta = ABANDONED_AFTER) -> Reader:
    """The service's readers. Each query gets its share of the machine's cores rather than
    all of them: with as many queries at once as cores or more, a query's threads only wait
    for each other's (on 2 cores and 4 concurrent clients, one thread a query read a
    transcript in 15 ms instead of 21, a bot's day in 49 ms instead of 57)."""
    threads = max(1, (os.cpu_count() or 1) // READERS)
    return Reader(
        *(connect(dsn, database, {"max_threads": threads}) for _ in range(READERS)),
        abandoned_after=abandoned_after,
    )


class ServeError(RuntimeError):
    """The service cannot start; the message names the setting to change."""


@dataclass(frozen=True)
class Role:
    project: bool = True
    """Run the live projectors (the store's owner in embedded mode)."""
    queries: bool = True
    """Answer the query API (``tstore project`` leaves it out)."""

    @property
    def writes_behind_reads(self) -> bool:
        """Whether the projectors write at ``projector_nice``: when this process also reads."""
        return self.project and self.queries


def check_exposure(host: str, token: str | None) -> None:
    """Without a token, only this machine may reach the store."""
    if token is None and not _loopback(host):
        raise ServeError(
            f"refusing to listen on {host} without a token: set TSTORE_API_TOKEN "
            "(clients then send it as a bearer token), or listen on 127.0.0.1"
        )


def _loopback(host: str) -> bool:
    try:
        return all(
            ipaddress.ip_address(info[4][0]).is_loopback
            for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        )
    except (OSError, ValueError):
        return False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted connections only then, and
    # without it each answer's body waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(
            f"cannot listen on {host}:{port} ({exc.strerror}): another process has the port; "
            "choose another with --port or TSTORE_HTTP_PORT"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class EmbeddedServer(uvicorn.Server):
    """uvicorn without signal handlers of its own: whoever runs it decides when it ends
    (``should_exit``), as this process does on SIGINT or SIGTERM. Its shutdown first ends
    ``state``'s streams of live calls, which would otherwise keep it waiting for ever."""

    def __init__(self, config: uvicorn.Config, state: StoreState) -> None:
        super().__init__(config)
        self.state = state

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start serving with what the process holds so far (its modules and the app: about
        140,000 objects) frozen out of the garbage collector's full collections, each of
        which scanned them all and held every request meanwhile: 40-170 ms, a transcript's
        p99 over HTTP in ``bench.query``'s first phase (a timing script). Garbage is
        collected first, so that none is frozen."""
        gc.collect()
        gc.freeze()
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.state.closing.set()
        await super().shutdown(sockets)


async def run(
    settings: Settings,
    stop: asyncio.Event,
    *,
    role: Role,
    host: str,
    port: int,
    on_ready: Callable[[str], None] | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve (and project, by ``role``) until ``stop``; ``on_ready`` is told the base URL
    once the store is open. ``sock``: ``host:port`` bound already (``bind``), by a caller
    that must know the port is free before it creates anything."""
    token = settings.api_token.get_secret_value() if settings.api_token else None
    check_exposure(host, token)
    if sock is None:
        sock = bind(host, port)
    state = StoreState(token=token, projecting=role.project)
    server = EmbeddedServer(
        uvicorn.Config(create_app(state, queries=role.queries), log_config=None, access_log=False),
        state,
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    keeping: asyncio.Task[None] | None = None
    facts_stop = asyncio.Event()
    rebuild_stopped: asyncio.Task[None] | None = None
    try:
        await _open(settings, state, role)
        rebuild_stopped = asyncio.create_task(_stop_rebuild(state, stop))
        if role.writes_behind_reads:
            ignored = ignored_nice(settings.projector_nice, settings.dsn)
            if ignored is not None:
                log.warning("projector_nice_ignored", detail=ignored)
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{sock.getsockname()[1]}/"
        log.info("serving", url=url, projecting=role.project)
        if on_ready is not None:
            on_ready(url)
        if role.queries:
            clients = await asyncio.to_thread(keeper_connections, settings)
            keeping = asyncio.create_task(keep_facts(FactsKeeper(*clients), facts_stop))
        if role.project:
            await _project(settings, state, stop, behind_reads=role.writes_behind_reads)
        else:
            state.probe = LagProbe(
                settings.kafka_bootstrap,
                settings.topics,
                settings.consumer_group,
                security=settings.kafka_security,
            )
            await state.probe.run(stop, state.ready_store())
    finally:
        try:
            stop.set()  # however run ends: its rebuild is stopped with it
            if rebuild_stopped is not None:
                await rebuild_stopped
        finally:
            server.should_exit = True
            await serving
            facts_stop.set()
            if keeping is not None:
                await keeping


async def _stop_rebuild(state: StoreState, stop: asyncio.Event) -> None:
    """Once ``stop`` is set, stop the rebuild beside the projectors, not after their grace."""
    await stop.wait()
    if state.rebuilds is not None:
        await state.rebuilds.stop(GRACE_S)


async def _open(settings: Settings, state: StoreState, role: Role) -> None:
    try:
        store = await asyncio.to_thread(
            open_store,
            settings.dsn,
            settings.clickhouse_database,
            writing_behind_reads(settings.projector_nice) if role.writes_behind_reads else None,
        )
        reader = (
            await asyncio.to_thread(
                open_reader,
                settings.dsn,
                settings.clickhouse_database,
                timedelta(seconds=settings.abandoned_after_s),
            )
            if role.queries
            else None
        )
    except StoreUnavailableError as exc:
        raise ServeError(str(exc)) from None
    state.rebuilds = rebuild_service(settings, store, reader.forget if reader else None)
    state.store, state.reader = store, reader


async def keep_facts(keeper: FactsKeeper, stop: asyncio.Event) -> None:
    """Keep the caches of the analytics and the listing until ``stop``: a refresh every
    ``FACTS_EVERY_S``, the first of which folds the whole store. A failed refresh is reported
    and the next one folds what it missed; until then readers take those sessions live."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(keeper.refresh, stop.is_set)
        except NotFoundError:
            pass  # no generation yet: nothing projected to cache
        except Exception as exc:  # any failure: report, and try again at the next tick
            why = [str(exc) or type(exc).__name__, *getattr(exc, "__notes__", [])]
            log.warning("facts_refresh_failed", error="; ".join(why))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), FACTS_EVERY_S)


async def _within_grace(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run ``work`` until it ends; once ``stop`` is set it has ``GRACE_S`` to end on its own,
    then it is cancelled. With the broker gone a commit can wait for ever, and a SIGTERM must
    still end the process; batches not committed are projected again at the next start."""
    task = asyncio.create_task(work)
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait([task], timeout=GRACE_S)
        if not task.done():
            log.warning(
                "projectors_cancelled",
                after_s=GRACE_S,
                detail="they did not finish their batches in time (is Kafka reachable?); "
                "what was not committed is projected again at the next start",
            )
            task.cancel()
            await asyncio.wait([task], timeout=GRACE_S)
            return
        task.result()
    finally:
        stopping.cancel()


async def _project(
    settings: Settings, state: StoreState, stop: asyncio.Event, *, behind_reads: bool
) -> None:
    """The live projectors until ``stop``; after a failure (Kafka gone, say), again with
    backoff. Until they first fetch, the lag grows from when they first tried: a store
    started while its broker was out of reach said it was current for the minute its
    topics' check took to fail, and that check, taking its time, held up a SIGTERM too."""
    attempt, began = 0, time.time()

    async def topics_then_project() -> None:
        nonlocal attempt
        await ensure_topics(
            settings.kafka_bootstrap,
            settings.topics,
            partitions=settings.topic_partitions,
            security=settings.kafka_security,
        )
        log.info("projecting", bootstrap=settings.kafka_bootstrap)
        attempt = 0
        await project_live(
            settings,
            state.ready_store(),
            stop,
            state.metrics,
            state.feed.publish,
            behind_reads=behind_reads,
        )

    state.metrics.stopped(began)
    while not stop.is_set():
        try:
            await _within_grace(topics_then_project(), stop)
        except Exception as exc:  # any failure: report, wait, start again
            state.metrics.stopped(began)
            wait = RETRY_S[min(attempt, len(RETRY_S) - 1)]
            attempt += 1
            log.warning("projector_stopped", error=str(exc) or type(exc).__name__, retry_in_s=wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
    log.info("projectors_stopped")
