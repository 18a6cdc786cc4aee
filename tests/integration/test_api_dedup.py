"""Every answer shows each session, turn and hit once, whatever Kafka delivered twice, and
calls nothing complete that the store does not hold whole."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from clickhouse_connect.driver.client import Client

from consumers.storage.clickhouse import Store, connect
from schemas import Topics
from schemas.models import Event
from tests.events import ended
from tests.integration.api_support import (
    chunks,
    conversation,
    live_api,
    now,
    verdict,
    without_freshness,
)

pytestmark = pytest.mark.integration


class _LedgerHeldBack(Store):
    """Writes the event ledger (``session_events``) only once ``release`` is set: the store as
    the projector leaves it between a batch's inserts, one table after the other (and, should
    it crash between them, until it runs again)."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.release = threading.Event()

    def insert(self, table: str, rows: pl.DataFrame, *, generation: int, **options: Any) -> None:
        if table == "session_events":
            self.release.wait(120)
        super().insert(table, rows, generation=generation, **options)


async def test_a_session_whose_events_are_not_all_in_the_store_is_never_called_complete(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    store = _LedgerHeldBack(connect(clickhouse_dsn, database))
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database, store=store) as api:
        try:
            await api.publish(conversation("torn", now() - timedelta(minutes=5)))
            deadline = time.monotonic() + 60
            while (response := await api.http.get("/v1/sessions/torn")).status_code != 200 or [
                t["complete"] for t in response.json()["turns"]
            ] != [True] * 4:
                assert response.status_code in (200, 404), response.text
                assert time.monotonic() < deadline, "the turns were never written"
                await asyncio.sleep(0.05)
            shown = response.json()["summary"]["completeness"]
            listed = await api.ok("/v1/sessions", complete="true")
        finally:
            store.release.set()
        assert not shown["complete"], f"complete while the store holds no event of it: {shown}"
        assert shown["events"] < shown["expected"], shown
        assert listed["items"] == [], "listed as complete"

        await api.until_projected()
        whole = await api.ok("/v1/sessions/torn")
        assert verdict(whole["summary"]["completeness"]) == {
            "complete": True,
            "events": 8,
            "expected": 8,
            "missing": 0,
            "open_turns": 0,
            "state": "open",
            "holes": [],
        }
        assert [
            s["session_id"] for s in (await api.ok("/v1/sessions", complete="true"))["items"]
        ] == ["torn"]


CHUNK_TOTALS = {"chunks": 1, "samples": 16_000}
"""What the chunks of ``chunks`` add up to, per track."""
HOLEY = {
    "complete": False,
    "events": 4,
    "expected": 5,
    "missing": 1,
    "open_turns": 1,
    "state": "abandoned",
    "holes": ["missing_events", "open_turns"],
}
"""The holey call, two hours old and never ended."""


def _renamed(body: dict[str, Any], session_id: str) -> str:
    """An answer with the session's id (also inside chunk ids and uris) taken out."""
    return json.dumps(body, sort_keys=True).replace(session_id, "<session>")


async def test_duplicated_and_replayed_events_show_once_in_every_answer(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    at = now() - timedelta(hours=2)
    texts = ("My kumquat order never came.", "Sorry, let me look up the kumquat order.")

    def call(session_id: str) -> list[Event]:
        audio = {f"{t}_{n}": v for t in ("user", "assistant") for n, v in CHUNK_TOTALS.items()}
        return [
            *conversation(session_id, at, texts=texts),
            *chunks(session_id, at, seq=8),
            ended(10, session_id, bot_id="api-bot", totals=audio),
        ]

    clean, doubled, shuffled = call("clean"), call("doubled"), call("shuffled")
    replay = list(shuffled)
    random.Random(7).shuffle(replay)
    # An incomplete call: turn-1 never stops, and seq 3 never arrives.
    holey = [
        *conversation("holey", at + timedelta(minutes=1), turns=1, texts=("kumquat?",)),
        conversation("holey", at + timedelta(minutes=1), turns=2)[2],
        *chunks("holey", at, seq=4)[:1],
    ]

    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        # Twice in a row (one batch, most likely), then replayed once everything is in the
        # store (other batches, other inserts): the read side folds both.
        await api.publish(clean)
        await api.publish(doubled)
        await api.publish(doubled)
        await api.publish(shuffled)
        await api.publish(holey)
        await api.until_projected()
        await api.publish(doubled)
        await api.publish(replay)
        await api.publish(holey)
        await api.until_projected()

        listing = await api.ok("/v1/sessions", limit=500)
        ids = [s["session_id"] for s in listing["items"]]
        assert sorted(ids) == ["clean", "doubled", "holey", "shuffled"], ids
        by_id = {s["session_id"]: s for s in listing["items"]}
        for session_id in ("clean", "doubled", "shuffled"):
            summary = by_id[session_id]
            assert summary["turns"] == {"user": 2, "assistant": 2}, session_id
            assert summary["talk_ms"] == {"user": 4000, "assistant": 4000}, session_id
            assert verdict(summary["completeness"]) == {
                "complete": True,
                "events": 11,
                "expected": 11,
                "missing": 0,
                "open_turns": 0,
                "state": "sealed",
                "holes": [],
            }, session_id
        assert by_id["holey"]["turns"] == {"user": 1, "assistant": 1}
        assert verdict(by_id["holey"]["completeness"]) == HOLEY

        details = {
            session_id: await api.ok(f"/v1/sessions/{session_id}")
            for session_id in ("clean", "doubled", "shuffled")
        }
        reference = details["clean"]
        assert [t["turn_id"] for t in reference["turns"]] == [f"turn-{n}" for n in range(4)]
        assert {
            track: [c["chunk_id"] for c in cs] for track, cs in reference["chunks"].items()
        } == {
            "user": ["clean-user-0"],
            "assistant": ["clean-assistant-0"],
        }
        for session_id in ("doubled", "shuffled"):
            assert _renamed(without_freshness(details[session_id]), session_id) == (
                _renamed(without_freshness(reference), "clean")
            ), f"{session_id} answers differently from the clean call"
            turns = await api.ok(f"/v1/sessions/{session_id}/turns")
            assert turns["turns"] == details[session_id]["turns"]
        assert by_id["doubled"] == {**by_id["clean"], "session_id": "doubled"}

        hits = await api.ok("/v1/search", q="kumquat", limit=100)
        keys = [(h["session_id"], h["turn_id"]) for h in hits["items"]]
        assert Counter(keys) == Counter(
            [(s, t) for s in ("clean", "doubled", "shuffled") for t in ("turn-0", "turn-1")]
            + [("holey", "turn-0")]
        )
        assert hits["next_cursor"] is None

        figures = await api.ok(
            "/v1/analytics/turns",
            since=(at - timedelta(minutes=1)).isoformat(),
            until=(at + timedelta(hours=1)).isoformat(),
        )
        assert {
            role: (f["turns"], f["complete"], f["duration_ms"]["count"])
            for role, f in figures["roles"].items()
        } == {"user": (7, 7, 7), "assistant": (7, 6, 6)}
        latency = await api.ok(
            "/v1/analytics/latency",
            since=(at - timedelta(minutes=1)).isoformat(),
            until=(at + timedelta(hours=1)).isoformat(),
        )
        # holey's open turn-1 started 1 s after turn-0 stopped: a latency, though still open
        assert latency["response_latency_ms"]["count"] == 7
        named = await api.ok(
            "/v1/analytics",
            since=(at - timedelta(minutes=1)).isoformat(),
            until=(at + timedelta(hours=1)).isoformat(),
            bucket="day",
        )
        rows = named["rows"]
        assert sum(r["sessions"] for r in rows) == len(by_id)
        assert [sum(r["turns"][role] for r in rows) for role in ("user", "assistant")] == [7, 7]
        assert sum(r["response_latency_ms"]["count"] for r in rows) == 7

        incomplete = await api.ok("/v1/incomplete")
        assert incomplete["items"] == [
            {
                "session_id": "holey",
                "bot_id": "api-bot",
                "completeness": incomplete["items"][0]["completeness"],
                "missing_seqs": [3],
                "open_turn_ids": ["turn-1"],
            }
        ]
        assert verdict(incomplete["items"][0]["completeness"]) == HOLEY
        assert incomplete["next_cursor"] is None
