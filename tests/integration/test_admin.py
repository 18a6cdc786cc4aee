"""The admin routes' answers: problems that say what failed, and how fresh the store is; a
rebuild cancelled and resumed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from consumers.admin import RebuildService
from consumers.projections import PROJECTIONS
from consumers.projector import Projector
from consumers.storage.clickhouse import Store
from schemas import Topics
from service.state import StoreState
from tests.conftest import unique_name
from tests.integration.api_support import FRESHNESS, PROBLEM_JSON
from tests.integration.rebuild_support import contents, live_store
from tests.integration.serving import serving
from tstore.cli import app

pytestmark = pytest.mark.integration


@pytest.fixture
def dead_bootstrap() -> Iterator[str]:
    """An address where nothing listens: the port is bound (no one else gets it) but never
    listened on, so every connection is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{bound.getsockname()[1]}"


@asynccontextmanager
async def admin_api(
    clickhouse: Client, bootstrap: str, topics: Topics
) -> AsyncIterator[tuple[httpx.AsyncClient, Store]]:
    """The service of a store that does not project, rebuilding from ``bootstrap``."""
    store = Store(clickhouse)
    await asyncio.to_thread(store.migrate)
    rebuilds = RebuildService(
        bootstrap=bootstrap, topics=topics, store=store, base_group=unique_name("g")
    )
    state = StoreState(store=store, rebuilds=rebuilds)
    async with serving(state) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield http, store


def problem(response: httpx.Response, status: int) -> str:
    """The detail of the response, a problem ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    detail: str = response.json()["detail"]
    return detail


async def test_a_rebuild_with_kafka_unreachable_is_a_503_naming_the_bootstrap(
    clickhouse: Client, dead_bootstrap: str
) -> None:
    topics = Topics(prefix=f"{unique_name('t')}.")
    async with admin_api(clickhouse, dead_bootstrap, topics) as (http, _):
        for body in ({}, {"dry_run": True}):
            detail = problem(await http.post("/v1/admin/rebuild", json=body), 503)
            assert "Kafka" in detail, detail
            assert dead_bootstrap in detail, detail
        assert (await http.get("/v1/admin/rebuild")).json()["state"] == "idle"


async def test_dropping_a_generation_that_does_not_exist_is_a_404_naming_it(
    clickhouse: Client, dead_bootstrap: str
) -> None:
    topics = Topics(prefix=f"{unique_name('t')}.")
    async with admin_api(clickhouse, dead_bootstrap, topics) as (http, _):
        detail = problem(await http.delete("/v1/admin/generations/7"), 404)
        assert "generation 7" in detail, detail
        live = problem(await http.delete("/v1/admin/generations/1"), 409)
        assert "generation 1 is what readers see" in live, live


async def test_every_admin_answer_says_how_fresh_the_store_is(
    clickhouse: Client, kafka_bootstrap: str, topics: Topics
) -> None:
    async with admin_api(clickhouse, kafka_bootstrap, topics) as (http, store):
        answers = {
            "plan": await http.post("/v1/admin/rebuild", json={"dry_run": True}),
            "status": await http.get("/v1/admin/rebuild"),
        }
        # a generation readers are not shown, to drop
        await asyncio.to_thread(store.generations.create, 2, PROJECTIONS, until=None, targets={})
        answers["generations"] = await http.get("/v1/admin/generations")
        answers["drop"] = await http.delete("/v1/admin/generations/2")
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        assert set(FRESHNESS) <= set(body), (name, body)
        assert body["lag_ms"] is None, name  # this process neither projects nor probes
    assert answers["plan"].json()["plan"]["generation"] == 2
    assert [g["generation"] for g in answers["generations"].json()["generations"]] == [1, 2]
    assert answers["drop"].json()["state"] == "discarded"


async def test_a_discard_with_another_option_is_refused_and_drops_nothing(
    clickhouse: Client, dead_bootstrap: str
) -> None:
    topics = Topics(prefix=f"{unique_name('t')}.")
    async with admin_api(clickhouse, dead_bootstrap, topics) as (http, store):
        await asyncio.to_thread(store.generations.create, 2, PROJECTIONS, until=None, targets={})
        body = {"discard": True, "dry_run": True, "resume": True}
        detail = problem(await http.post("/v1/admin/rebuild", json=body), 422)
        assert "discard excludes resume, dry_run" in detail, detail
        pending = await asyncio.to_thread(store.generations.unfinished)
        assert pending is not None
        assert pending.number == 2


async def test_a_discard_with_kafka_unreachable_is_a_503_that_drops_nothing(
    clickhouse: Client, dead_bootstrap: str
) -> None:
    """The consumer group's offsets go first: rows dropped while the offsets stayed would
    answer 'unreachable' for a discard half done."""
    topics = Topics(prefix=f"{unique_name('t')}.")
    async with admin_api(clickhouse, dead_bootstrap, topics) as (http, store):
        await asyncio.to_thread(store.generations.create, 2, PROJECTIONS, until=None, targets={})
        detail = problem(await http.post("/v1/admin/rebuild", json={"discard": True}), 503)
        assert dead_bootstrap in detail, detail
        pending = await asyncio.to_thread(store.generations.unfinished)
        assert pending is not None
        assert (pending.number, pending.state) == (2, "building")


async def _rebuild_state(http: httpx.AsyncClient, until: Callable[[Any], bool]) -> Any:
    """The rebuild's status once ``until`` holds of it, asked every 50 ms for at most 60 s."""
    for _ in range(1200):
        status = (await http.get("/v1/admin/rebuild")).raise_for_status().json()
        if until(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"the rebuild never got there: {status}")


async def test_a_rebuild_cancelled_mid_replay_resumes_from_where_it_stopped_to_its_cut_over(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild started by mistake, or at a bad hour, could only be stopped with the whole
    store process. Cancelled, it writes and commits the batches in hand and keeps its
    generation unfinished; resumed, it goes on from there and cuts over. ``tstore rebuild
    --cancel`` asks it of the store's process."""
    store, group = await live_store(kafka_bootstrap, topics, clickhouse, 3_000)
    before = contents(clickhouse)
    step = Projector.step

    async def unhurried(projector: Projector) -> int:
        """A batch at least every 0.1 s: the replay lasts long enough to be cancelled midway
        on a loaded machine."""
        await asyncio.sleep(0.1)
        return await step(projector)

    monkeypatch.setattr(Projector, "step", unhurried)
    rebuilds = RebuildService(
        bootstrap=kafka_bootstrap, topics=topics, store=store, base_group=group, max_batch=50
    )
    state = StoreState(store=store, rebuilds=rebuilds)
    async with serving(state) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        (await http.post("/v1/admin/rebuild", json={})).raise_for_status()
        await _rebuild_state(http, lambda s: sum(o for _, _, o in s["positions"]) > 0)
        env = {"TSTORE_HTTP_PORT": url.rsplit(":", 1)[1], "TSTORE_CLICKHOUSE_DSN": "chdb:///no"}
        said = await asyncio.to_thread(CliRunner().invoke, app, ["rebuild", "--cancel"], env=env)
        assert said.exit_code == 0, said.output
        said_lines = said.output.splitlines()  # the store's process, this one, logs too
        assert any(
            line.startswith("the rebuild of generation 2 was cancelled") for line in said_lines
        ), said.output
        ended = (await http.get("/v1/admin/rebuild")).raise_for_status().json()
        assert ended["state"] == "cancelled", ended
        assert "generation 2 was cancelled before its replay ended" in ended["error"]
        read = sum(o for _, _, o in ended["positions"])
        assert 0 < read < 3_000
        assert [g.state for g in store.generations.all()] == ["live", "building"]
        assert contents(clickhouse) == before, "readers still see the live generation"
        assert "no rebuild is running" in problem(await http.delete("/v1/admin/rebuild"), 409)

        (await http.post("/v1/admin/rebuild", json={"resume": True})).raise_for_status()
        done = await _rebuild_state(http, lambda s: s["state"] != "running")
        assert (done["state"], done["summary"]["generation_state"]) == ("done", "live"), done
        assert done["summary"]["events"] == 3_000 - read, "the resumed replay read the rest"
        assert store.generations.current() == {p: 2 for p in PROJECTIONS}
        assert contents(clickhouse) == before
