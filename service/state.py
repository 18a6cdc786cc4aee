"""What the routes share: the store's reader once it is open, how fresh it is, the rebuild
service of the process that owns it, and the token that guards it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from audio.stores import ChunkReader
from consumers.admin import RebuildService
from consumers.lag import LagProbe
from consumers.live_feed import LiveFeed
from consumers.metrics import ProjectorMetrics
from consumers.storage.clickhouse import Store
from queries import Reader
from queries.clips import ClipCutter
from service.answers import Freshness
from service.problems import StoreNotReadyError


@dataclass
class StoreState:
    token: str | None = None
    projecting: bool = False
    """Whether this process runs the live projectors, and so knows the store's lag."""
    metrics: ProjectorMetrics = field(default_factory=ProjectorMetrics)
    probe: LagProbe | None = None
    """Where a process that does not project learns the lag (from Kafka)."""
    store: Store | None = None
    reader: Reader | None = None
    rebuilds: RebuildService | None = None
    clips: ClipCutter = field(default_factory=lambda: ClipCutter(ChunkReader()))
    """Cuts audio from the chunk objects, wherever their URIs point."""
    feed: LiveFeed = field(default_factory=LiveFeed)
    """The rows this process's projectors write, as they write them (when ``projecting``)."""
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the service shuts down: its streams of live calls end."""

    def ready_reader(self) -> Reader:
        return _ready(self.reader)

    def ready_store(self) -> Store:
        return _ready(self.store)

    def ready_rebuilds(self) -> RebuildService:
        return _ready(self.rebuilds)

    def freshness(self) -> Freshness:
        source = self.metrics if self.projecting else self.probe
        lag = source.lag_s if source is not None else None
        return Freshness(as_of=datetime.now(UTC), lag_ms=None if lag is None else lag * 1000)


T = TypeVar("T")


def _ready(part: T | None) -> T:
    """A part of the store that is set once the store is open."""
    if part is None:
        raise StoreNotReadyError("the store is still opening; retry shortly")
    return part
