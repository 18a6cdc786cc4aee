"""``GET /v1/sessions/{id}/stream`` through the real broker and engine: a call's turns, chunks
and end arrive as they are projected, once each, both from the projector of the process
(``projecting``) and from the tables (``following``: a service that does not project, beside
projectors it does not own, as ``tstore serve --no-project`` runs)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from bench.query_load import Publisher
from consumers.live_feed import LiveFeed
from consumers.storage.clickhouse import connect, open_store
from queries import Reader
from schemas import Topics
from service.state import StoreState
from tests.events import ended
from tests.integration.api_support import PROBLEM_JSON, Api, chunks, conversation, live_api, now
from tests.integration.live_support import (
    OTHER_TRAFFIC_EPS,
    Sent,
    has_turn,
    hold_latencies,
    streaming,
)
from tests.integration.serving import serving

pytestmark = pytest.mark.integration

MODES = ["projecting", "following"]


@asynccontextmanager
async def streamed(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str, mode: str
) -> AsyncIterator[tuple[Api, httpx.AsyncClient]]:
    """The live service, and a client of the service whose streams are read: the same one,
    or (``following``) one that does not project and reads the tables."""
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        if mode == "projecting":
            yield api, api.http
            return
        state = StoreState(store=api.store, reader=Reader(connect(clickhouse_dsn, database)))
        async with serving(state) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
            yield api, http


def turns_of(events: list[Sent]) -> list[tuple[str, bool]]:
    return [(e.data["turn_id"], e.data["complete"]) for e in events if e.event == "turn"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_streams_its_turns_chunks_and_end_as_they_are_projected(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str, mode: str
) -> None:
    at = now() - timedelta(seconds=30)
    call = conversation("live-1", at, turns=4)
    async with (
        streamed(kafka_bootstrap, topics, clickhouse_dsn, database, mode) as (api, http),
        streaming(http, "live-1") as stream,  # before the call exists: it is waited for
    ):
        await api.publish(call[:1])
        first = await stream.next()
        assert (first.event, first.data["turn_id"], first.data["complete"]) == (
            "turn",
            "turn-0",
            False,
        )
        await api.publish(call[1:2])
        second = await stream.next()
        assert turns_of([second]) == [("turn-0", True)]

        await api.publish(call[2:] + chunks("live-1", at, seq=8))
        rest = await stream.until(
            lambda taken: has_turn("turn-3")(taken) and sum(e.event == "chunk" for e in taken) == 2
        )
        assert {"turn-1", "turn-2", "turn-3"} == {t for t, complete in turns_of(rest) if complete}

        totals = {"user_chunks": 1, "user_samples": 16000}
        totals |= {"assistant_chunks": 1, "assistant_samples": 16000}
        await api.publish([ended(10, "live-1", bot_id="api-bot", totals=totals)])
        end = await stream.until(lambda taken: taken[-1].event == "end")
        detail = await api.ok("/v1/sessions/live-1")
        assert end[-1].data == detail["summary"]["completeness"]
        assert end[-1].data["state"] == "sealed"

    seen = [first, second, *rest, *end]
    turn_events = [e.data for e in seen if e.event == "turn"]
    assert len({repr(t) for t in turn_events}) == len(turn_events), "a turn sent twice as it was"
    newest: dict[str, Any] = {t["turn_id"]: t for t in turn_events}
    assert [newest[t["turn_id"]] for t in detail["turns"]] == detail["turns"]
    sent_chunks = {
        (e.data["track"], e.data["chunk_seq"]): e.data for e in seen if e.event == "chunk"
    }
    assert sent_chunks == {
        (track, c["chunk_seq"]): {**c, "track": track}
        for track, index in detail["chunks"].items()
        for c in index
    }


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_nobody_spoke_in_streams_its_chunks_and_end_and_has_a_page(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str, mode: str
) -> None:
    """No turn: the end's completeness, and the session's summary, come from its events
    and chunks alone."""
    totals = {"user_chunks": 1, "user_samples": 16000}
    totals |= {"assistant_chunks": 1, "assistant_samples": 16000}
    async with (
        streamed(kafka_bootstrap, topics, clickhouse_dsn, database, mode) as (api, http),
        streaming(http, "silent") as stream,
    ):
        await api.publish(chunks("silent", now() - timedelta(seconds=30), seq=0))
        await api.publish([ended(2, "silent", bot_id="api-bot", totals=totals)])
        sent = await stream.until(lambda taken: bool(taken) and taken[-1].event == "end")
        detail = await api.ok("/v1/sessions/silent")
    assert [e.event for e in sent] == ["chunk", "chunk", "end"]
    assert (sent[-1].data["state"], sent[-1].data["events"]) == ("sealed", 3)
    assert detail["summary"]["completeness"] == sent[-1].data
    assert (detail["summary"]["bot_id"], detail["summary"]["turns"]) == (
        "api-bot",
        {"user": 0, "assistant": 0},
    )
    assert detail["turns"] == []
    assert sorted(detail["chunks"]) == ["assistant", "user"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_replayed_event_sends_nothing_and_a_reconnect_only_what_is_new(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str, mode: str
) -> None:
    call = conversation("replayed", now() - timedelta(seconds=30), turns=3)
    async with streamed(kafka_bootstrap, topics, clickhouse_dsn, database, mode) as (api, http):
        async with streaming(http, "replayed") as stream:
            await api.publish(call[:2])
            await stream.until(has_turn("turn-0"))
            # The same stop again (a producer's journal replays it), then the next turn.
            await api.publish([call[1], call[1], *call[2:4]])
            after = await stream.until(has_turn("turn-1"))
            assert all(e.data["turn_id"] == "turn-1" for e in after), after
            held = stream.last_id

        await api.publish(call[4:])
        async with streaming(http, "replayed", last_id=held) as resumed:
            news = await resumed.until(has_turn("turn-2"))
        assert {e.data["turn_id"] for e in news} == {"turn-2"}, news

        async with streaming(http, "replayed") as fresh:
            everything = await fresh.until(lambda taken: len(taken) == 3)
        assert turns_of(everything) == [("turn-0", True), ("turn-1", True), ("turn-2", True)]


async def test_a_subscriber_that_reads_nothing_does_not_hold_the_projector_back(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    """A browser on a stalled link: its stream's buffers fill, its subscription overflows and
    is dropped, the projector goes on; once read again, the stream catches up from the
    tables."""
    at = now() - timedelta(hours=1)
    long_text = "a sentence that goes on and on " * 128  # 4 KiB: the buffers fill quickly
    call = conversation("stalled", at, turns=3_000, texts=[long_text] * 3_000)
    feed = LiveFeed(limit=4)
    async with (
        live_api(kafka_bootstrap, topics, clickhouse_dsn, database, feed=feed) as api,
        streaming(api.http, "stalled") as stream,
    ):
        with capture_logs() as logged:
            for start in range(0, len(call), 200):  # batches of their own, mostly
                await api.publish(call[start : start + 200])
                await asyncio.sleep(0.2)
            await api.until_projected(within_s=60)
        assert {"event": "live_follower_behind", "session_id": "stalled", "dropped": 4} in [
            {k: e.get(k) for k in ("event", "session_id", "dropped")} for e in logged
        ]
        taken = await stream.until(has_turn("turn-2999"), within_s=120)
    newest = {e.data["turn_id"]: e.data for e in taken if e.event == "turn"}
    assert len(newest) == 3_000
    assert all(t["complete"] and t["text"] == long_text for t in newest.values())


async def test_the_stream_refuses_what_the_other_routes_refuse(
    clickhouse_dsn: str, database: str
) -> None:
    reader = Reader(connect(clickhouse_dsn, database))
    async with (
        serving(StoreState(token="sesame", reader=reader)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        serving(StoreState()) as opening_url,
    ):
        assert (await http.get("/v1/sessions/s-1/stream")).status_code == 401
        http.headers["Authorization"] = "Bearer sesame"
        for path, headers, status, named in [
            (f"/v1/sessions/{'x' * 257}/stream", {}, 422, "session_id"),
            ("/v1/sessions/s-1/stream", {"Last-Event-ID": "7:3.x.-"}, 400, "Last-Event-ID"),
            ("/v1/sessions/s-1/stream", {"Last-Event-ID": "1:2.3:4"}, 400, "Last-Event-ID"),
        ]:
            response = await http.get(path, headers=headers)
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == PROBLEM_JSON
            assert named in response.json()["detail"]
        response = await httpx.AsyncClient(base_url=opening_url).get("/v1/sessions/s-1/stream")
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM_JSON


async def test_an_open_stream_does_not_keep_the_service_from_stopping(
    clickhouse_dsn: str, database: str
) -> None:
    """uvicorn waits for every response to end before it stops; a stream ends only when its
    client leaves, unless the service's shutdown ends it."""
    open_store(clickhouse_dsn, database)  # migrated: the stream reads its tables
    state = StoreState(reader=Reader(connect(clickhouse_dsn, database)))
    served = serving(state)
    url = await served.__aenter__()
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        request = http.build_request("GET", "/v1/sessions/not-yet/stream")
        response = await http.send(request, stream=True)
        assert response.status_code == 200
        await asyncio.wait_for(served.__aexit__(None, None, None), 10)
        assert [line async for line in response.aiter_lines()] == []


async def test_produce_to_stream_latency_under_other_traffic(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    """From a turn's publish to its ``turn`` event on the stream, while another process
    publishes other calls at 5k events/s. The issue's target is produce-to-page p99 <= 1.5 s;
    measured here to the stream (the browser test adds the page), asserted only within 5 s."""
    call = conversation("measured", now() - timedelta(minutes=5), turns=61)
    latencies: list[float] = []
    async with (
        live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api,
        streaming(api.http, "measured") as stream,
    ):
        with Publisher(kafka_bootstrap, topics, OTHER_TRAFFIC_EPS) as other_calls:
            await api.publish(call[:2])  # the first turn warms the path up
            await stream.until(has_turn("turn-0"))
            for n in range(1, 61):
                published = time.perf_counter()
                await api.publish(call[2 * n : 2 * n + 2])
                await stream.until(has_turn(f"turn-{n}"))
                latencies.append(time.perf_counter() - published)
                await asyncio.sleep(0.1)
    hold_latencies("produce-to-stream", latencies, other_calls.eps)
