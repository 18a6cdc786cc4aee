"""The store's moving parts, built from settings in one place: every process that projects
or rebuilds (``tstore serve``, ``project``, ``rebuild``) gets them the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from consumers.admin import RebuildService
from consumers.live import run_live
from consumers.metrics import ProjectorMetrics
from consumers.storage.clickhouse import Store
from tstore.settings import Settings


def rebuild_service(
    settings: Settings, store: Store, on_done: Callable[[], None] | None = None
) -> RebuildService:
    return RebuildService(
        on_done=on_done,
        bootstrap=settings.kafka_bootstrap,
        topics=settings.topics,
        store=store,
        base_group=settings.consumer_group,
        session_timeout_ms=settings.consumer_session_timeout_ms,
        max_batch=settings.batch_max_events,
        max_wait_ms=settings.batch_max_wait_ms,
        keep_retired=settings.retired_generations_kept,
    )


async def project_live(
    settings: Settings, store: Store, stop: asyncio.Event, metrics: ProjectorMetrics
) -> None:
    """The live projectors until ``stop``, following cut-overs."""
    await run_live(
        stop,
        bootstrap=settings.kafka_bootstrap,
        topics=settings.topics,
        base_group=settings.consumer_group,
        store=store,
        session_timeout_ms=settings.consumer_session_timeout_ms,
        max_batch=settings.batch_max_events,
        max_wait_ms=settings.batch_max_wait_ms,
        metrics=metrics,
    )
