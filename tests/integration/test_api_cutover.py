"""The HTTP query API across a rebuild's cut-over, with the live projectors running."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from consumers.projections import PROJECTIONS
from schemas import Topics
from schemas.models import Event
from tests.integration.api_support import chunks, conversation, live_api, now, without_freshness

pytestmark = pytest.mark.integration

SESSIONS = 80


async def test_after_a_rebuild_cut_over_the_api_serves_the_new_generation_without_a_failure(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    origin = now() - timedelta(hours=4)
    calls: list[Event] = []
    for n in range(SESSIONS):
        at = origin + timedelta(minutes=n)
        calls += [*conversation(f"call-{n:03d}", at), *chunks(f"call-{n:03d}", at, seq=8)]
    watched = "call-040"

    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database, rebuilds=True) as api:
        await api.publish(calls)
        await api.until_projected()
        paths = (f"/v1/sessions/{watched}", "/v1/sessions?limit=50")
        expected = {path: without_freshness(await api.ok(path)) for path in paths}
        assert len(expected["/v1/sessions?limit=50"]["items"]) == 50
        assert expected[f"/v1/sessions/{watched}"]["summary"]["completeness"]["complete"]

        answers: list[tuple[str, int, dict[str, Any] | str]] = []
        polling = asyncio.Event()

        async def poll(path: str) -> None:
            while not polling.is_set():
                try:
                    response = await api.http.get(path)
                except httpx.HTTPError as exc:
                    answers.append((path, 0, repr(exc)))
                else:
                    body = (
                        without_freshness(response.json())
                        if response.status_code == 200
                        else response.text
                    )
                    answers.append((path, response.status_code, body))
                await asyncio.sleep(0.01)

        pollers = [asyncio.create_task(poll(path)) for path in paths]
        try:
            started = await api.http.post("/v1/admin/rebuild", json={})
            assert started.status_code == 200, started.text
            assert started.json()["plan"]["generation"] == 2
            deadline = time.monotonic() + 180
            while (status := (await api.http.get("/v1/admin/rebuild")).json())["state"] in (
                "idle",
                "running",
            ):
                assert time.monotonic() < deadline, status
                await asyncio.sleep(0.1)
            during = len(answers)
            # Readers look the shown generation up at most a second apart: keep reading
            # until this process's reader has followed the cut-over, and ten reads more.
            deadline = time.monotonic() + 30
            while await asyncio.to_thread(api.reader.generation, "transcripts") != 2:
                assert time.monotonic() < deadline, "the reader never followed the cut-over"
                await asyncio.sleep(0.1)
            after_switch = len(answers)
            while len(answers) < after_switch + 10:
                assert time.monotonic() < deadline + 30, "hardly any reads of generation 2"
                await asyncio.sleep(0.1)
        finally:
            polling.set()
            await asyncio.gather(*pollers)

        assert status["state"] == "done", status
        assert status["summary"]["generation"] == 2
        assert status["summary"]["generation_state"] == "live"
        assert api.store.generations.current() == {p: 2 for p in PROJECTIONS}
        assert api.store.generations.get(1).state == "retired"
        failed = [(path, code, body) for path, code, body in answers if code != 200]
        assert not failed, failed[:5]
        changed = [(path, body) for path, _, body in answers if body != expected[path]]
        assert not changed, changed[:2]
        assert during >= 2, "hardly any reads while the rebuild ran"

        # New events now go to generation 2 only: the API serves them, so it reads there.
        late = now() - timedelta(minutes=1)
        await api.publish(conversation("after-cut-over", late))
        deadline = time.monotonic() + 60
        while (response := await api.http.get("/v1/sessions/after-cut-over")).status_code != 200:
            assert response.status_code == 404, response.text
            assert time.monotonic() < deadline, "a session published after the cut-over"
            await asyncio.sleep(0.1)
        assert len(response.json()["turns"]) == 4
        newest = await api.ok("/v1/sessions", limit=1)
        assert newest["items"][0]["session_id"] == "after-cut-over"
