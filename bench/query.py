"""Reads at scale: the query service over N sessions, idle and while the projector ingests.

The store (``bench.store_data``: N sessions, 10N turns, 20N chunks over 30 days and 20 bots,
5% of rows written twice) is loaded through ``Store.insert`` once, in a process of its own,
and kept under ``~/.cache/transcript-store/bench-query/``, keyed by its size, the migrations
and the loader, so a rerun measures only reads. Each run reads (and ingests into) a fresh copy
of it, ``scratch/`` there; background merges settle before anything is timed.

Each read runs ``REQUESTS`` times on targets drawn with a fixed seed (after ``WARMUP`` untimed
ones on others), three ways: the bare engine (the SQL a hand-written query would be),
in-process through ``queries``, and over HTTP from ``CLIENTS`` client processes at once
against the service running in this process (which owns the embedded store). HTTP runs
twice: idle, then while the live projectors, in the server's process, ingest
``INGEST_RATE`` events/s published from another process to a local Kafka broker.

Reads: ``transcript`` (one session's turns), ``session`` (its summary, turns and chunks),
``sessions_page`` (50 sessions of one bot and day, newest first), ``search`` (20 newest hits
of a common word, a rare word or a quoted phrase), ``day_all_bots`` and ``day_one_bot`` (a
day's turn-duration percentiles), ``analytics_week`` (every named metric of a week of all
bots by the hour, ``/v1/analytics``; targets p50 at most 400 ms) and ``analytics_day_one_bot``
(the same for one bot's day; at most 60 ms), which have no bare query. Then, idle,
``clip_local`` and ``clip_s3``: a 5 s clip of one track cut from 30 s WAV chunks in a local
folder or in a bucket of s3proxy (``bench.query_clips``).

JSON keys, per read: ``<read>_p50_ms`` and ``<read>_idle_p99_ms`` (HTTP, idle),
``<read>_ingest_p50_ms`` and ``<read>_ingest_p99_ms`` (HTTP, ingesting),
``<read>_inproc_p50_ms``, ``<read>_bare_p50_ms``; ``clip_local_p50_ms`` and ``_p99_ms``,
``clip_s3_p50_ms`` and ``_p99_ms`` (targets: p50 at most 30 ms local, 60 ms s3proxy);
``facts_first_refresh_seconds``, the first refresh of the analytics' cache (``queries.facts``),
which the service keeps during the reads as ``tstore serve`` does; and
``clip_bytes_ratio``, the bytes the service read per clip over the clip's samples, a chunk's
header included the first time it is read (target: at most 1.2); ``transcript_p99_ms`` (idle),
``sessions``, ``turns``, ``load_seconds`` (when the store was loaded, by the run that did),
``store_reused``, ``copy_seconds``, ``settle_seconds``, ``store_bytes`` (active parts on
disk), ``ingest_eps`` (achieved), ``ingest_lag_s`` (the projector's lag as the reads ended),
``ingest_lag_p50_s`` and ``ingest_lag_max_s`` (of the lag taken every half second meanwhile),
``writes_niced`` (1 when the projectors wrote at ``projector_nice``: the engine applies it
only in a process with CAP_SYS_NICE, which a root shell has and a user's rarely does),
``http_failures``,
``requests_min`` (the fewest requests of any read and way: below ``REQUESTS`` when
``BUDGET_S`` cut one short).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from clickhouse_connect.driver.client import Client

from bench import store_data
from bench.projector import PARTITIONS
from bench.query_clips import ClipSessions
from bench.query_load import (
    SPAWN,
    Clients,
    Publisher,
    ServerThread,
    keeping_facts,
    projecting,
    sampled,
)
from bench.query_reads import BARE, READS, bare_call, http_path, inproc_call, targets
from bench.report import run
from bench.store_data import Shape, load
from consumers.storage.clickhouse import EMBEDDED, Store, connect, embedded_holder
from consumers.storage.migrations import MIGRATIONS
from consumers.topics_admin import ensure_topics
from queries.facts import FactsKeeper
from schemas import Topics
from service.process import open_reader
from service.state import StoreState
from tstore.components import ignored_nice, writing_behind_reads
from tstore.devkafka import DevKafka
from tstore.settings import Settings

REQUESTS = 200
"""Per read and way of reading; over HTTP shared out among the clients."""
BUDGET_S = 60.0
"""Fewer requests when a read and way of reading take longer than this: a slow read is slow
on any count, and the run ends in a predictable time."""
WARMUP = 10
"""Untimed reads of each kind first, on other targets, in process and then over HTTP: the
caches are warm, and so are the service's routes (FastAPI builds an included router's routes
at its first request, 25-45 ms that a first phase's 4 clients each met, 2% of its requests:
its p99)."""
WARMUP_BUDGET_S = 20.0
"""Fewer warm-up reads of a kind that takes longer."""
CLIENTS = 4
INGEST_RATE = 5_000
INGEST_WARMUP_S = 5.0
SEED = 20261101
DATABASE = "bench"
CACHE = Path.home() / ".cache" / "transcript-store" / "bench-query"
SCRATCH = CACHE / "scratch"
"""The copy a run reads and ingests into; left behind, replaced by the next run."""


def note(text: str) -> None:
    """Progress, on stderr: stdout ends with the figures."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def timed(calls: Iterable[Callable[[], object]], budget_s: float) -> list[float]:
    """Each call's latency (ms), one after the other, until ``budget_s`` is spent."""
    latencies = []
    deadline = time.perf_counter() + budget_s
    for call in calls:
        began = time.perf_counter()
        if began > deadline:
            break
        call()
        latencies.append(1000 * (time.perf_counter() - began))
    return latencies


def p50(latencies: list[float]) -> float:
    return round(sorted(latencies)[len(latencies) // 2], 2)


def p99(latencies: list[float]) -> float:
    return round(sorted(latencies)[int(0.99 * (len(latencies) - 1))], 2)


def store_folder(sessions: int) -> Path:
    """Where the store of ``sessions`` is kept: by size, and the text of the migrations and of
    this loader (a migration edited before it lands changes the store as much as a new one)."""
    made_by = hashlib.sha256(Path(store_data.__file__).read_bytes())
    for migration in MIGRATIONS:
        made_by.update(migration.sql.encode())
    return CACHE / f"s{sessions}-m{len(MIGRATIONS)}-{made_by.hexdigest()[:8]}"


def dsn_of(folder: Path) -> str:
    return f"{EMBEDDED}{folder / 'clickhouse'}"


def _load(sessions: int) -> None:
    """Load the kept store, let its merges settle, mark it complete: in a process of its own,
    as chDB opens one data path per process and the benchmark's reads a copy."""
    folder = store_folder(sessions)
    store = Store(connect(dsn_of(folder), DATABASE))
    store.migrate()
    began = time.perf_counter()
    rows = load(store, Shape(sessions))
    seconds = time.perf_counter() - began
    settled = settle(store.client)
    marker = {"load_seconds": seconds, "settle_seconds": settled, "rows": rows}
    (folder / "loaded.json").write_text(json.dumps(marker))


def kept_store(sessions: int) -> tuple[Path, float, bool]:
    """The kept store of ``sessions``, loaded now unless an earlier run completed it: its
    folder, the seconds its load took, and whether it was reused."""
    folder = store_folder(sessions)
    marker = folder / "loaded.json"
    reused = marker.exists()
    if not reused:
        shutil.rmtree(folder, ignore_errors=True)  # a load that did not finish
        loader = SPAWN.Process(target=_load, args=(sessions,))
        loader.start()
        loader.join()
        if loader.exitcode:
            raise RuntimeError(f"loading {folder} failed (exit code {loader.exitcode})")
    return folder, float(json.loads(marker.read_text())["load_seconds"]), reused


def scratch_copy(kept: Path) -> Path:
    """A copy of the kept store for this run's reads and ingest: the kept one stays as loaded."""
    holder = embedded_holder(dsn_of(SCRATCH))
    if holder is not None:
        raise RuntimeError(f"{SCRATCH} is open in process {holder}: another bench.query run?")
    shutil.rmtree(SCRATCH, ignore_errors=True)
    shutil.copytree(kept, SCRATCH, symlinks=True)  # the engine links its folders relatively
    return SCRATCH


def settle(client: Client) -> float:
    """Wait until no merge or mutation has run in the database for three seconds."""
    began, quiet = time.perf_counter(), 0
    while quiet < 3:
        busy = client.query(
            "SELECT (SELECT count() FROM system.merges WHERE database = {d:String}) + "
            "(SELECT count() FROM system.mutations WHERE database = {d:String} AND NOT is_done)",
            parameters={"d": DATABASE},
        ).result_rows[0][0]
        quiet = 0 if busy else quiet + 1
        time.sleep(1)
    return time.perf_counter() - began


def measure(sessions: int) -> dict[str, float]:
    settings = Settings.load()  # before the store is loaded: a bad setting ends it
    nice = settings.projector_nice
    shape = Shape(sessions)
    kept, load_seconds, reused = kept_store(sessions)
    began = time.perf_counter()
    folder = scratch_copy(kept)
    copied = time.perf_counter() - began
    store = Store(connect(dsn_of(folder), DATABASE, writing_behind_reads(nice)))
    store.migrate()
    clip_sessions = ClipSessions(store, folder)
    figures: dict[str, float] = {
        "sessions": shape.sessions,
        "turns": shape.turns,
        "load_seconds": round(load_seconds, 1),
        "store_reused": int(reused),
        "copy_seconds": round(copied, 1),
        "settle_seconds": round(settle(store.client), 1),
        "store_bytes": int(
            store.client.query(
                "SELECT sum(bytes_on_disk) FROM system.parts "
                "WHERE active AND database = {d:String}",
                parameters={"d": DATABASE},
            ).result_rows[0][0]
        ),
    }
    keeper = FactsKeeper(
        *(connect(dsn_of(folder), DATABASE, writing_behind_reads(nice)) for _ in range(2))
    )
    began = time.perf_counter()
    keeper.refresh()
    figures["facts_first_refresh_seconds"] = round(time.perf_counter() - began, 1)
    figures["settle_seconds"] += round(settle(store.client), 1)  # the cache's merges
    note(f"store ready: {figures}")
    reader = open_reader(dsn_of(folder), DATABASE)
    warm = targets(shape, WARMUP, SEED + 1)
    for read in READS:
        timed((inproc_call(reader, read, t) for t in warm), WARMUP_BUDGET_S)
    chosen = targets(shape, REQUESTS, SEED)
    counts: list[int] = []

    def record(read: str, way: str, latencies: list[float]) -> None:
        note(
            f"{way:>6} {read:<13} n={len(latencies):<3} p50 {p50(latencies):7.1f} ms, "
            f"p99 {p99(latencies):7.1f} ms"
        )
        counts.append(len(latencies))
        prefix = read if way in ("idle", "clip") else f"{read}_{way}"
        figures[f"{prefix}_p50_ms"] = p50(latencies)
        if way in ("idle", "ingest"):
            figures[f"{read}_{way}_p99_ms"] = p99(latencies)
        if way == "clip":
            figures[f"{read}_p99_ms"] = p99(latencies)

    for read in READS:
        if read in BARE:
            record(
                read, "bare", timed((bare_call(store.client, read, t) for t in chosen), BUDGET_S)
            )
        record(read, "inproc", timed((inproc_call(reader, read, t) for t in chosen), BUDGET_S))
    paths = {read: [http_path(read, t) for t in chosen] for read in READS}
    state = StoreState(store=store, reader=reader)
    with (
        ServerThread(state) as server,
        keeping_facts(server, keeper),
        Clients(server.url, CLIENTS) as clients,
    ):
        for read in READS:
            clients.get([http_path(read, t) for t in warm], WARMUP_BUDGET_S)
        for read, path in paths.items():
            record(read, "idle", clients.get(path, BUDGET_S))
        with clip_sessions:
            clip_runs = clip_sessions.timed(server, clients, REQUESTS, BUDGET_S, SEED)
        for where, latencies in clip_runs.latencies.items():
            record(f"clip_{where}", "clip", latencies)
        figures["clip_bytes_ratio"] = clip_runs.bytes_ratio
        note(f"clip bytes read / clip samples: {clip_runs.bytes_ratio}")
        with DevKafka(heap="1g") as broker:
            topics = Topics("bench.")
            asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=PARTITIONS))
            with (
                projecting(server, store, broker.bootstrap, topics, settings.projector_nice_lag_s),
                Publisher(broker.bootstrap, topics, INGEST_RATE) as publisher,
                sampled(lambda: state.metrics.lag_s) as lags,
            ):
                time.sleep(INGEST_WARMUP_S)
                for read, path in paths.items():
                    record(read, "ingest", clients.get(path, BUDGET_S))
                lag = state.metrics.lag_s
    for failure in clients.failures[:10]:
        note(f"failed: {failure}")
    figures |= {
        "transcript_p99_ms": figures["transcript_idle_p99_ms"],
        "ingest_eps": round(publisher.eps),
        "ingest_lag_s": -1.0 if lag is None else round(lag, 2),
        "ingest_lag_p50_s": p50(lags) if lags else -1.0,
        "ingest_lag_max_s": round(max(lags, default=-1.0), 2),
        "writes_niced": int(nice > 0 and ignored_nice(nice, dsn_of(folder)) is None),
        "http_failures": len(clients.failures),
        "requests_min": min(counts),
    }
    return figures


if __name__ == "__main__":
    run(__doc__ or "", 1_000_000, measure, option="sessions")
