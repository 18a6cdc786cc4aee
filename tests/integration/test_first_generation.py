"""A start that died while making the store's first generation is finished by the next start,
and a store with nothing to project says so instead of waiting in silence.

The states are the ones a SIGKILL leaves inside ``Generations.ensure_first`` (generation 1
recorded but not shown; shown but not marked live), written as that code writes them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.client import Client

from consumers.live import live_projectors
from consumers.projections import PROJECTIONS
from consumers.storage.clickhouse import Store
from consumers.storage.generations import Generation, GenerationError
from consumers.storage.migrations import migrate
from schemas import Topics

pytestmark = pytest.mark.integration


def _half_made(clickhouse: Client, *, shown: bool) -> Store:
    migrate(clickhouse)
    store = Store(clickhouse)
    store.generations.save(Generation(1, PROJECTIONS, "building", datetime.now(UTC)))
    if shown:
        clickhouse.insert(
            "current_generation",
            [[p, 1, datetime.now(UTC)] for p in PROJECTIONS],
            column_names=["view", "generation", "switched_at"],
        )
    return store


@pytest.mark.parametrize("shown", [False, True], ids=["recorded", "shown-not-live"])
def test_the_next_start_finishes_a_half_made_first_generation(
    clickhouse: Client, shown: bool
) -> None:
    store = _half_made(clickhouse, shown=shown)
    store.migrate()
    assert store.generations.current() == dict.fromkeys(PROJECTIONS, 1)
    assert store.generations.get(1).state == "live"
    assert store.generations.unfinished() is None
    assert [g.number for g in store.generations.all()] == [1]


async def test_a_store_with_nothing_shown_says_why_it_cannot_project(clickhouse: Client) -> None:
    store = _half_made(clickhouse, shown=False)
    live = store.generations.get(1)
    store.generations.save(Generation(1, live.projections, "live", live.created_at))
    with pytest.raises(GenerationError, match="no generation is shown to readers"):
        await live_projectors(bootstrap="127.0.0.1:1", topics=Topics(), base_group="g", store=store)


def test_a_first_generation_left_building_never_takes_readers_from_a_later_one(
    clickhouse: Client,
) -> None:
    store = _half_made(clickhouse, shown=False)
    store.generations.save(Generation(2, PROJECTIONS, "building", datetime.now(UTC)))
    store.generations.cut_over(2)
    store.migrate()
    assert store.generations.current() == dict.fromkeys(PROJECTIONS, 2)
