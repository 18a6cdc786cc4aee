"""The store's moving parts, built from settings in one place: every process that projects
or rebuilds (``tstore serve``, ``project``, ``rebuild``) gets them the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from consumers.admin import RebuildService
from consumers.live import run_live
from consumers.metrics import ProjectorMetrics
from consumers.projector import Rows
from consumers.storage.clickhouse import Store
from tstore.settings import Settings


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
        **_consuming(settings, store),
    )


async def project_live(
    settings: Settings,
    store: Store,
    stop: asyncio.Event,
    metrics: ProjectorMetrics,
    on_written: Callable[[Rows], None] | None = None,
) -> None:
    """The live projectors until ``stop``, following cut-overs; ``on_written`` is told each
    batch's rows once they are written (the service's live streams)."""
    await run_live(stop, metrics=metrics, on_written=on_written, **_consuming(settings, store))
