"""``GET /v1/sessions/{id}/stream`` through the real broker and engine: a call's turns, chunks
and end arrive as they are projected, once each, both from the projector of the process
(``projecting``) and from the tables (``following``: a service that does not project, beside
projectors it does not own, as ``tstore serve --no-project`` runs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from consumers.storage.clickhouse import connect
from queries import Reader
from schemas import Topics
from service.state import StoreState
from tests.events import ended
from tests.integration.api_support import Api, chunks, conversation, live_api, now
from tests.integration.live_support import Sent, has_turn, streaming
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
