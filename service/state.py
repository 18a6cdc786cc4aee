"""What the routes share: the store's reader once it is open, how fresh it is, the rebuild
service of the process that owns it, and the token that guards it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from consumers.admin import RebuildService
from consumers.lag import LagProbe
from consumers.metrics import ProjectorMetrics
from consumers.storage.clickhouse import Store
from queries import Reader
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
    failure: str | None = None
    """Why the store could not be opened, for /readyz and every query."""

    def ready_reader(self) -> Reader:
        if self.reader is None:
            raise StoreNotReadyError(self.failure or "the store is still opening; retry shortly")
        return self.reader

    def ready_store(self) -> Store:
        if self.store is None:
            raise StoreNotReadyError(self.failure or "the store is still opening; retry shortly")
        return self.store

    def ready_rebuilds(self) -> RebuildService:
        if self.rebuilds is None:
            raise StoreNotReadyError(self.failure or "the store is still opening; retry shortly")
        return self.rebuilds

    def freshness(self) -> Freshness:
        source = self.metrics if self.projecting else self.probe
        lag = source.lag_s if source is not None else None
        return Freshness(as_of=datetime.now(UTC), lag_ms=None if lag is None else lag * 1000)
