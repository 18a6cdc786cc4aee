"""Dropping a generation twice: the second drop says the generation is gone already, here, over
HTTP and on the command line, in the words ``tstore generations`` lists it with."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from consumers.projections import PROJECTIONS
from consumers.storage.clickhouse import Store
from consumers.storage.generations import GenerationError
from service.state import StoreState
from tests.commands import run_tstore
from tests.integration.api_support import PROBLEM_JSON
from tests.integration.serving import serving

pytestmark = pytest.mark.integration

ALREADY = "generation 2 is discarded already: its rows were dropped"


def _store_with_a_second_generation(clickhouse: Client) -> Store:
    store = Store(clickhouse)
    store.migrate()
    store.generations.create(2, PROJECTIONS, until=None, targets={})
    return store


def test_a_generation_is_dropped_once(clickhouse: Client) -> None:
    store = _store_with_a_second_generation(clickhouse)
    assert store.generations.drop(2).state == "discarded"
    with pytest.raises(GenerationError, match=ALREADY):
        store.generations.drop(2)
    assert store.generations.get(2).state == "discarded"


async def test_dropping_a_dropped_generation_is_refused_over_http_and_on_the_command_line(
    clickhouse: Client, tmp_path: Path
) -> None:
    """It was dropped again with rc 0, saying "dropped generation 2" each time."""
    store = await asyncio.to_thread(_store_with_a_second_generation, clickhouse)
    async with (
        serving(StoreState(store=store), queries=False) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert (await http.delete("/v1/admin/generations/2")).status_code == 200
        again = await http.delete("/v1/admin/generations/2")
        told = await asyncio.to_thread(
            run_tstore,
            "generations",
            "drop",
            "2",
            cwd=tmp_path,
            TSTORE_HTTP_PORT=url.rsplit(":", 1)[1],
        )
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == PROBLEM_JSON
    assert again.json()["detail"] == ALREADY
    assert told.returncode == 1, told.stderr
    assert told.stderr.strip() == ALREADY
