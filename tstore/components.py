"""The store's moving parts, built from settings in one place: every process that projects
or rebuilds (``tstore serve``, ``project``, ``rebuild``) gets them the same way."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from consumers.admin import RebuildService
from consumers.live import run_live
from consumers.metrics import ProjectorMetrics
from consumers.projector import Rows
from consumers.storage.clickhouse import Store, connect, embedded_path
from consumers.storage.generations import Generation
from queries.facts import warm
from tstore.settings import Settings


def writing_behind_reads(nice: int) -> dict[str, Any]:
    """Settings of the connection the projectors write through when the same process answers
    queries: its threads run at ``nice`` (``os_thread_priority``), so the cores go to reads
    first, where the engine may set it (``ignored_nice``). At 5k events/s under 4 clients on
    2 cores (two ``bench.query`` runs, as root), nice 19 took a tenth to a third off the p99
    of a transcript and about 40% off that of a page of sessions. The lag was told as 0.65 s
    instead of 0.25 s then; told with the batches still being written, it was 10 s at the
    median, so the live projectors write at the normal priority from ``projector_nice_lag_s``
    (``Store.insert``'s ``hurry``)."""
    return {"os_thread_priority": nice}


CAP_SYS_NICE = 23
"""The capability's bit in a process's capability sets (``linux/capability.h``)."""


def may_renice(status: str) -> bool | None:
    """Whether a process with ``status`` (its ``/proc/<pid>/status``) holds CAP_SYS_NICE; None
    when it does not say. The engine applies ``os_thread_priority`` only with it, as it must
    set a thread's priority back after each query: without it the setting does nothing (a
    script: its query threads ran at nice 19 as root, at 0 with the capability dropped)."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_NICE & 1)
    return None


def ignored_nice(nice: int, dsn: str) -> str | None:
    """Why writing at ``nice`` (``projector_nice``) cannot take effect in this process, if it
    cannot: the embedded engine of ``dsn`` runs here, off Linux (where the engine never sets
    a thread's priority) or without CAP_SYS_NICE. A server applies it with its own
    capabilities; a Linux that does not say is taken at its word."""
    if not nice or embedded_path(dsn) is None:
        return None
    if sys.platform != "linux":
        why, remedy = "off Linux", ""
    else:
        try:
            status = Path("/proc/self/status").read_text()
        except OSError:
            return None
        if may_renice(status) is not False:
            return None
        why = "as this process lacks CAP_SYS_NICE"
        remedy = (
            "grant it to the process (docker run --cap-add=SYS_NICE, or compose's cap_add: "
            "[SYS_NICE], for the image's root user; a systemd unit's "
            "AmbientCapabilities=CAP_SYS_NICE for another user), or "
        )
    return (
        f"TSTORE_PROJECTOR_NICE ({nice}) has no effect {why}, so ingest shares the cores with "
        f"reads, which slow down more under ingest; {remedy}set TSTORE_PROJECTOR_NICE=0 to say so"
    )


def _consuming(settings: Settings, store: Store) -> dict[str, Any]:
    """What a projector, live or rebuilding, is told: where to read, where to write, how."""
    return {
        "bootstrap": settings.kafka_bootstrap,
        "security": settings.kafka_security,
        "topics": settings.topics,
        "base_group": settings.consumer_group,
        "store": store,
        "session_timeout_ms": settings.consumer_session_timeout_ms,
        "max_batch": settings.batch_max_events,
        "max_wait_ms": settings.batch_max_wait_ms,
    }


def rebuild_service(
    settings: Settings, store: Store, on_done: Callable[[], None] | None = None
) -> RebuildService:
    return RebuildService(
        on_done=on_done,
        keep_retired=settings.retired_generations_kept,
        warm=partial(_warm, settings),
        **_consuming(settings, store),
    )


def keeper_connections(settings: Settings) -> tuple[Client, Client]:
    """The two connections a keeper of the caches folds on (``FactsKeeper``), its own (the
    projectors' would wait for the minutes a first refresh takes), at the projectors'
    priority."""
    behind = writing_behind_reads(settings.projector_nice)
    first = connect(settings.dsn, settings.clickhouse_database, behind)
    try:
        return first, connect(settings.dsn, settings.clickhouse_database, behind)
    except BaseException:
        first.close()
        raise


def _warm(settings: Settings, generation: Generation, stopping: Callable[[], bool]) -> None:
    """The rebuilt generation's caches."""
    clients = keeper_connections(settings)
    try:
        warm(
            *clients,
            generation=generation.number,
            projections=generation.projections,
            stopping=stopping,
        )
    finally:
        for client in clients:
            client.close()


async def project_live(
    settings: Settings,
    store: Store,
    stop: asyncio.Event,
    metrics: ProjectorMetrics,
    on_written: Callable[[Rows], None] | None = None,
    *,
    behind_reads: bool = False,
) -> None:
    """The live projectors until ``stop``, following cut-overs; ``on_written`` is told each
    batch's rows once they are written (the service's live streams). ``behind_reads``: the
    store writes at ``projector_nice`` (``writing_behind_reads``), and the projectors hurry
    from ``projector_nice_lag_s``; elsewhere a priority setting is sent with no insert (a
    server's profile may refuse it)."""
    await run_live(
        stop,
        metrics=metrics,
        on_written=on_written,
        hurry_after_s=settings.projector_nice_lag_s if behind_reads else None,
        **_consuming(settings, store),
    )
