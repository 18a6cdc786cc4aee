"""Freshness on ``/metrics``: the store's lag and each bot's newest turn, read when scraped.

The projector's own metrics say how far behind its consumer is, and only in a process that
projects; these say it in the store's terms, from any process that answers queries (a
``--no-project`` replica learns the lag from Kafka), so one dashboard can tell a quiet bot from
a store that is behind: ``time() - tstore_newest_turn_timestamp_seconds`` grows in both cases,
``tstore_store_lag_seconds`` only in the second.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from queries import NotFoundError
from queries.freshness import newest_turns
from service.state import StoreState


class FreshnessCollector(Collector):
    def __init__(self, state: StoreState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        lag_ms = self.state.freshness().lag_ms
        if lag_ms is not None:
            yield GaugeMetricFamily(
                "tstore_store_lag_seconds",
                "Age of the oldest event not yet projected, as this process knows it",
                value=lag_ms / 1000,
            )
        if self.state.reader is None:
            return
        try:
            newest = newest_turns(self.state.reader)
        except NotFoundError:  # no generation yet: nothing to show
            return
        turns = GaugeMetricFamily(
            "tstore_newest_turn_timestamp_seconds",
            "Start of each bot's newest turn the store shows (Unix time, the bot's clock)",
            labels=["bot_id"],
        )
        for bot, at in newest.items():
            turns.add_metric([bot], at.timestamp())
        yield turns


def freshness_registry(state: StoreState) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FreshnessCollector(state))
    return registry
