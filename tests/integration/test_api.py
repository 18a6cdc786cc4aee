"""The HTTP query API through the real broker and engine: events published to Kafka, projected
by the live projectors running beside the service, read back over HTTP."""

from __future__ import annotations

import asyncio
import html
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

import queries.facts
import service.process
from schemas import Topics
from service.state import StoreState
from tests.conftest import unique_name
from tests.integration.api_support import (
    Api,
    conversation,
    live_api,
    now,
    verdict,
    without_freshness,
)
from tests.integration.serving import serving

pytestmark = pytest.mark.integration


async def test_a_session_published_now_is_served_with_all_its_turns_within_a_second(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        # The projector's group has joined and made its first fetches: what is measured is
        # the steady state, not the consumer group's start.
        await api.publish(conversation("warm-up", now() - timedelta(minutes=5), turns=2))
        await api.until_projected()

        at = now() - timedelta(seconds=20)
        await api.publish(conversation("fresh", at, turns=4))
        acknowledged = time.monotonic()
        statuses: Counter[int] = Counter()
        while True:
            response = await api.http.get("/v1/sessions/fresh")
            statuses[response.status_code] += 1
            body = response.json()
            if response.status_code == 200 and [t["complete"] for t in body["turns"]] == [True] * 4:
                break
            assert response.status_code in (200, 404), response.text
            assert time.monotonic() - acknowledged < 30, "never served"
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - acknowledged

        assert elapsed < 1.0, f"served {elapsed:.3f} s after the publish was acknowledged"
        assert set(statuses) <= {200, 404}
        summary = body["summary"]
        assert summary["session_id"] == "fresh"
        assert summary["bot_id"] == "api-bot"
        assert summary["turns"] == {"user": 2, "assistant": 2}
        assert summary["talk_ms"] == {"user": 4000, "assistant": 4000}
        assert summary["median_response_latency_ms"] == 1000
        assert datetime.fromisoformat(summary["first_event_at"]) == at
        assert datetime.fromisoformat(summary["last_event_at"]) == at + timedelta(seconds=11)
        assert [(t["turn_id"], t["role"]) for t in body["turns"]] == [
            ("turn-0", "user"),
            ("turn-1", "assistant"),
            ("turn-2", "user"),
            ("turn-3", "assistant"),
        ]
        assert [t["response_latency_ms"] for t in body["turns"]] == [None, 1000, None, 1000]
        assert [t["duration_ms"] for t in body["turns"]] == [2000] * 4
        assert body["chunks"] == {}

        turns = await api.ok("/v1/sessions/fresh/turns")
        assert turns["session_id"] == "fresh"
        assert turns["turns"] == body["turns"]

        # The event ledger is another table, written after the turns' (see the test below).
        deadline = time.monotonic() + 30
        while (detail := await api.ok("/v1/sessions/fresh"))["summary"]["completeness"][
            "events"
        ] < 8:
            assert time.monotonic() < deadline, detail["summary"]
            await asyncio.sleep(0.05)
        assert verdict(detail["summary"]["completeness"]) == {
            "complete": True,
            "events": 8,
            "expected": 8,
            "missing": 0,
            "open_turns": 0,
            "state": "open",
            "holes": [],
        }


@pytest.mark.parametrize("cached", [False, True], ids=["live", "cached"])
async def test_paging_through_sessions_shows_each_once_while_newer_ones_arrive(
    kafka_bootstrap: str,
    topics: Topics,
    clickhouse_dsn: str,
    database: str,
    cached: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``cached``: the listing's cache is refreshed every 0.2 s while the walk runs, its mark
    0.5 s behind, so pages merge cached sessions with those projected after the mark."""
    monkeypatch.setattr(service.process, "FACTS_EVERY_S", 0.2)
    monkeypatch.setattr(queries.facts, "SAFETY", timedelta(seconds=0.5))
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database, cached=cached) as api:
        origin = now() - timedelta(hours=8)
        existing = [f"old-{n:04d}" for n in range(300)]
        # Distinct first-turn times, 30 s apart: two and a half hours, so pages reach across
        # the listing's time windows.
        await api.publish(
            [
                event
                for n, session_id in enumerate(existing)
                for event in conversation(session_id, origin + timedelta(seconds=30 * n), turns=2)
            ]
        )
        await api.until_projected()
        if cached:
            await _cards_hold(api, len(existing))
        everything = await api.ok("/v1/sessions", limit=500)
        assert sorted(s["session_id"] for s in everything["items"]) == existing
        assert everything["next_cursor"] is None

        walking = asyncio.Event()
        newer: list[str] = []

        async def publish_newer() -> None:
            n = 0
            while not walking.is_set():
                batch = [f"new-{n + k:04d}" for k in range(5)]
                await api.publish(
                    [
                        event
                        for k, session_id in enumerate(batch)
                        for event in conversation(
                            session_id,
                            now() - timedelta(minutes=30) + timedelta(seconds=n + k),
                            turns=2,
                        )
                    ]
                )
                newer.extend(batch)
                n += len(batch)
                await asyncio.sleep(0.05)

        def newer_projected() -> int:
            rows = api.store.client.query(
                "SELECT uniqExact(session_id) FROM transcripts_generations "
                "WHERE startsWith(session_id, 'new-')"
            ).result_rows
            return int(rows[0][0])

        publishing = asyncio.create_task(publish_newer())
        await asyncio.sleep(0.5)  # some of them are in before the walk begins
        pages: list[list[dict[str, Any]]] = []
        cursor: str | None = None
        try:
            projected_before = await asyncio.to_thread(newer_projected)
            while True:
                params: dict[str, Any] = {"limit": 7} | ({"cursor": cursor} if cursor else {})
                page = await api.ok("/v1/sessions", **params)
                pages.append(page["items"])
                cursor = page["next_cursor"]
                if cursor is None:
                    break
                assert len(pages) < 200, "the walk does not end"
            projected_after = await asyncio.to_thread(newer_projected)
        finally:
            walking.set()
            await publishing

        seen = [s["session_id"] for page in pages for s in page]
        twice = [i for i, n in Counter(seen).items() if n > 1]
        assert not twice, f"shown more than once: {twice}"
        assert not set(existing) - set(seen), f"skipped: {sorted(set(existing) - set(seen))}"
        assert set(seen) <= set(existing) | set(newer)
        assert all(len(page) <= 7 for page in pages)
        assert all(len(page) == 7 for page in pages[:-1]), [len(p) for p in pages]
        order = [(s["first_event_at"], s["session_id"]) for page in pages for s in page]
        keys = [(datetime.fromisoformat(at), sid) for at, sid in order]
        assert keys == sorted(keys, reverse=True), "newest first across pages"
        assert projected_after > projected_before, "nothing was ingested while the walk ran"


async def _cards_hold(api: Api, sessions: int, within_s: float = 60) -> None:
    """Until the listing's cache holds ``sessions`` sessions."""
    deadline = time.monotonic() + within_s
    while True:
        rows = api.store.client.query("SELECT uniqExact(session_id) FROM session_cards").result_rows
        if rows[0][0] >= sessions:
            return
        assert time.monotonic() < deadline, f"{rows[0][0]} of {sessions} sessions cached"
        await asyncio.sleep(0.2)


async def test_search_finds_a_phrase_just_projected_marked_in_any_case(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        token = unique_name("x").replace("_", "")
        phrase = f"violet {token} harbor"
        written = f"Violet {token.upper()} Harbor"
        text = f"Tom & Jerry asked: is the {written} open <today>?"
        at = now() - timedelta(minutes=2)
        await api.publish(conversation("searched", at, turns=2, texts=("Hello there.", text)))

        deadline = time.monotonic() + 60
        while not (found := await api.ok("/v1/search", q=f'"{phrase}"'))["items"]:
            assert time.monotonic() < deadline, "the phrase was never found"
            await asyncio.sleep(0.1)

        (hit,) = found["items"]
        start = text.index(written)
        assert hit["session_id"] == "searched"
        assert hit["turn_id"] == "turn-1"
        assert hit["role"] == "assistant"
        assert hit["bot_id"] == "api-bot"
        assert datetime.fromisoformat(hit["started_at"]) == at + timedelta(seconds=3)
        assert hit["text"] == text
        assert hit["matches"] == [{"start": start, "end": start + len(written)}]
        assert hit["marked"] == (
            f"{html.escape(text[:start])}<mark>{written}</mark>"
            f"{html.escape(text[start + len(written) :])}"
        )
        assert found["next_cursor"] is None

        upper = await api.ok("/v1/search", q=f'"{phrase.upper()}"')
        assert without_freshness(upper) == without_freshness(found)
        words = await api.ok("/v1/search", q=f"HARBOR {token}")
        assert [(h["session_id"], h["turn_id"]) for h in words["items"]] == [("searched", "turn-1")]
        token_at = start + len("Violet ")
        assert words["items"][0]["matches"] == [  # words apart are marked apart
            {"start": token_at, "end": token_at + len(token)},
            {"start": token_at + len(token) + 1, "end": start + len(written)},
        ]
        reversed_phrase = await api.ok("/v1/search", q=f'"harbor {token} violet"')
        assert reversed_phrase["items"] == [], "a phrase's words must come in its order"


async def test_every_answer_says_how_fresh_it_is_and_the_lag_while_projecting(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    at = now() - timedelta(minutes=10)
    paths = [
        "/v1/sessions",
        "/v1/sessions/fresh",
        "/v1/sessions/fresh/turns",
        "/v1/search?q=sentence",
        "/v1/incomplete",
        f"/v1/analytics/turns?since={quote(at.isoformat())}"
        f"&until={quote((at + timedelta(hours=1)).isoformat())}",
    ]
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        await api.publish(conversation("fresh", at))
        await api.until_projected()
        for path in paths:
            before = datetime.now(UTC)
            body = await api.ok(path)
            assert before - timedelta(seconds=1) <= datetime.fromisoformat(body["as_of"]), path
            assert datetime.fromisoformat(body["as_of"]) <= datetime.now(UTC), path
            lag = body["lag_ms"]
            assert isinstance(lag, int | float), (path, lag)
            assert not isinstance(lag, bool), (path, lag)
            assert 0 <= lag < 60_000, (path, lag)

        # A process that does not project cannot tell the lag, and says so.
        elsewhere = StoreState(store=api.store, reader=api.reader, projecting=False)
        async with serving(elsewhere) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
            for path in paths:
                response = await http.get(path)
                assert response.status_code == 200, (path, response.text)
                assert response.json()["lag_ms"] is None, path
                assert datetime.fromisoformat(response.json()["as_of"]).tzinfo is not None
