"""The harness of ``bench.query``: the service and the live projectors on a loop in a thread of
the benchmark's process (which owns the embedded store), and the load from processes of their
own, so that it does not compete with the server for that process's GIL: HTTP clients that each
time their requests, and a producer that publishes realistic events at a steady rate."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from http.client import HTTPConnection, RemoteDisconnected
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as ProcessEvent
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import uvicorn

from bench.codec import realistic_events
from consumers.live import run_live
from consumers.storage.clickhouse import Store
from producers.kafka import kafka_producer
from queries.facts import FactsKeeper
from schemas import EventCodec, Topics
from service.app import create_app
from service.process import EmbeddedServer, bind, keep_facts
from service.state import StoreState

SPAWN = multiprocessing.get_context("spawn")
T = TypeVar("T")


def _client(base_url: str, commands: Queue[Any], results: Queue[Any]) -> None:
    """One client: for each list of paths it is given, GET them one after the other (until
    the time budget that came with them is spent) and answer with the latency of each (ms) and
    the requests that failed.

    It speaks HTTP/1.1 over one kept-alive connection with the standard library, not httpx:
    the clients share this machine's two cores with the server they measure, and httpx spent
    0.84 ms of a core per request where ``http.client`` spends 0.30 (a timing script)."""
    address = urlsplit(base_url)
    http = HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=120)
    try:
        _get(http, "/healthz")  # the connection is open before timing starts
        results.put(None)
        while (command := commands.get()) is not None:
            paths, budget_s = command
            latencies: list[float] = []
            failures: list[str] = []
            deadline = time.perf_counter() + budget_s
            for path in paths:
                began = time.perf_counter()
                if began > deadline:
                    break
                status, body = _get(http, path)
                latencies.append(1000 * (time.perf_counter() - began))
                if status != 200:
                    failures.append(f"{path}: {status} {body[:200]!r}")
            results.put((latencies, failures))
    finally:
        http.close()


def _get(http: HTTPConnection, path: str) -> tuple[int, bytes]:
    """GET ``path``; once more on a new connection if the server had closed the kept one
    (uvicorn closes a connection idle for 5 s, as between two phases of the benchmark)."""
    try:
        http.request("GET", path)
        response = http.getresponse()
    except (RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        http.close()
        http.request("GET", path)
        response = http.getresponse()
    return response.status, response.read()


class Clients:
    """``count`` HTTP client processes against ``base_url``; ``get`` shares a list of paths out
    among them, all at once, and gathers every request's latency, made within ``budget_s``."""

    def __init__(self, base_url: str, count: int) -> None:
        self._results: Queue[Any] = SPAWN.Queue()
        self._commands: list[Queue[Any]] = [SPAWN.Queue() for _ in range(count)]
        self._processes: list[SpawnProcess] = [
            SPAWN.Process(target=_client, args=(base_url, c, self._results), daemon=True)
            for c in self._commands
        ]
        self.failures: list[str] = []

    def __enter__(self) -> Clients:
        for process in self._processes:
            process.start()
        for _ in self._processes:
            self._results.get(timeout=120)
        return self

    def get(self, paths: list[str], budget_s: float) -> list[float]:
        for n, commands in enumerate(self._commands):
            commands.put((paths[n :: len(self._commands)], budget_s))
        latencies: list[float] = []
        for _ in self._commands:
            times, failures = self._results.get()
            latencies += times
            self.failures += failures
        return latencies

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for commands in self._commands:
            commands.put(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


async def _publish(
    bootstrap: str, prefix: str, rate: int, stop: ProcessEvent, results: Queue[Any]
) -> None:
    topics, codec = Topics(prefix), EventCodec()
    producer = kafka_producer(bootstrap)
    await producer.start()
    per_tick = max(1, rate // 50)
    sent = 0
    try:
        began = time.perf_counter()
        while not stop.is_set():
            for event in realistic_events(per_tick, start=sent):
                await producer.send(
                    topics.for_event(event), codec.encode(event), key=event.session_id.encode()
                )
            sent += per_tick
            await asyncio.sleep(max(0.0, began + sent / rate - time.perf_counter()))
        await producer.flush()
        results.put((sent, time.perf_counter() - began))
    finally:
        await producer.stop()


def _publisher(
    bootstrap: str, prefix: str, rate: int, stop: ProcessEvent, results: Queue[Any]
) -> None:
    asyncio.run(_publish(bootstrap, prefix, rate, stop, results))


class Publisher:
    """A process publishing ``bench.codec.realistic_events`` at ``rate`` events/s, paced on the
    total sent so far (it catches up after a slow spell), until the block ends; ``eps`` is then
    the rate achieved, delivery of the last event included. The events are the same on every
    run, so replaying them into a kept store adds nothing once merged."""

    def __init__(self, bootstrap: str, topics: Topics, rate: int) -> None:
        self._stop = SPAWN.Event()
        self._results: Queue[Any] = SPAWN.Queue()
        self._process = SPAWN.Process(
            target=_publisher,
            args=(bootstrap, topics.prefix, rate, self._stop, self._results),
            daemon=True,
        )
        self.events = 0
        self.eps = 0.0

    def __enter__(self) -> Publisher:
        self._process.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        try:
            self.events, seconds = self._results.get(timeout=60)
            self.eps = self.events / seconds
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()


class ServerThread:
    """The HTTP service on a free loopback port, its event loop in a thread of this process;
    ``submit`` runs other coroutines (the live projectors) on the same loop.

    The loop runs one root task until stopped, as ``asyncio.run`` does in ``tstore serve``:
    anyio ties the worker threads of sync routes to the loop's root task, and a loop run
    forever has none, so each request's worker thread ended with the request (a thread
    created per request, which the service does not do)."""

    def __init__(self, state: StoreState) -> None:
        self.state = state
        self.loop = asyncio.new_event_loop()
        self._stopped = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="server", daemon=True)
        self._server = EmbeddedServer(
            uvicorn.Config(create_app(state), log_config=None, access_log=False), state
        )
        self._serving: asyncio.Task[None] | None = None
        self.url = ""

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def _run(self) -> None:
        self.loop.run_until_complete(self._stopped.wait())

    async def _start(self) -> str:
        sock = bind("127.0.0.1", 0)
        self._serving = serving = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def _stop(self) -> None:
        self._server.should_exit = True
        if self._serving is not None:
            await self._serving

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.url = self.submit(self._start()).result(timeout=60)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            self.submit(self._stop()).result(timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=60)


@contextmanager
def projecting(
    server: ServerThread, store: Store, bootstrap: str, topics: Topics, hurry_after_s: float
) -> Iterator[None]:
    """The live projectors in the server's process, on its store, while the block runs, as
    ``tstore serve`` runs them."""
    stop = asyncio.Event()
    server.state.projecting = True
    running = server.submit(
        run_live(
            stop,
            bootstrap=bootstrap,
            topics=topics,
            base_group="bench-query",
            store=store,
            metrics=server.state.metrics,
            hurry_after_s=hurry_after_s,
        )
    )
    try:
        yield
    finally:
        server.loop.call_soon_threadsafe(stop.set)
        running.result(timeout=120)
        server.state.projecting = False


@contextmanager
def keeping_facts(server: ServerThread, keeper: FactsKeeper) -> Iterator[None]:
    """The analytics' cache kept up to date on the server's loop, as ``tstore serve`` does,
    while the block runs."""
    stop = asyncio.Event()
    running = server.submit(keep_facts(keeper, stop))
    try:
        yield
    finally:
        server.loop.call_soon_threadsafe(stop.set)
        running.result(timeout=120)


@contextmanager
def sampled(read: Callable[[], float | None], every_s: float = 0.5) -> Iterator[list[float]]:
    """What ``read`` gives every ``every_s`` while the block runs (None left out): the
    projector's lag taken once as the reads ended said little of how it went meanwhile."""
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every_s):
            value = read()
            if value is not None:
                samples.append(value)

    thread = threading.Thread(target=sample, name="sampler", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()
