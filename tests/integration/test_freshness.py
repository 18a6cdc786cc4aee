"""Freshness in domain terms through the real broker and engine: ``/v1/freshness`` and
``/metrics`` give the lag and, per bot, the newest turn the store shows."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumers.storage.clickhouse import connect
from queries import Reader
from schemas import Topics
from service.process import Role, run
from service.state import StoreState
from tests.integration.api_support import conversation, live_api, now
from tests.integration.serving import serving
from tstore.settings import Settings

pytestmark = pytest.mark.integration


def gauges(text: str) -> dict[tuple[str, str | None], float]:
    return {
        (sample.name, sample.labels.get("bot_id")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_each_bot_s_newest_turn_and_the_lag_are_reported_once_projected(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    quiet_at, busy_at = now() - timedelta(hours=2), now() - timedelta(seconds=20)
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        await api.publish(conversation("quiet-1", quiet_at, turns=2, bot_id="quiet-bot"))
        await api.publish(conversation("busy-1", busy_at - timedelta(minutes=1), bot_id="busy-bot"))
        await api.publish(conversation("busy-2", busy_at, turns=3, bot_id="busy-bot"))
        await api.until_projected()

        body = await api.ok("/v1/freshness")
        as_of = datetime.fromisoformat(body["as_of"])
        newest = {b["bot_id"]: datetime.fromisoformat(b["newest_turn_at"]) for b in body["bots"]}
        assert newest == {
            "busy-bot": busy_at + timedelta(seconds=6),  # busy-2's third turn
            "quiet-bot": quiet_at + timedelta(seconds=3),
        }
        for bot in body["bots"]:
            expected = (as_of - newest[bot["bot_id"]]).total_seconds() * 1000
            assert bot["age_ms"] == pytest.approx(expected)
        assert 0 <= body["lag_ms"] < 5_000
        deadline = time.monotonic() + 5
        while (await api.ok("/v1/freshness"))["lag_ms"] != 0:  # every batch counted written
            assert time.monotonic() < deadline, "the lag never came back to 0 once caught up"
            await asyncio.sleep(0.1)

        metrics = gauges((await api.http.get("/metrics")).text)
        for bot, at in newest.items():
            assert metrics[("tstore_newest_turn_timestamp_seconds", bot)] == at.timestamp()
        assert metrics[("tstore_store_lag_seconds", None)] == pytest.approx(
            metrics[("tstore_projector_lag_seconds", None)]
        )

        # A process that neither projects nor asks Kafka cannot tell the lag; the bots it can.
        state = StoreState(store=api.store, reader=Reader(connect(clickhouse_dsn, database)))
        async with serving(state) as url, httpx.AsyncClient(base_url=url) as replica:
            answer = (await replica.get("/v1/freshness")).json()
            assert answer["lag_ms"] is None
            assert [b["bot_id"] for b in answer["bots"]] == ["busy-bot", "quiet-bot"]
            shown = gauges((await replica.get("/metrics")).text)
            assert ("tstore_store_lag_seconds", None) not in shown
            assert shown[("tstore_newest_turn_timestamp_seconds", "quiet-bot")] == (
                newest["quiet-bot"].timestamp()
            )


async def test_a_store_that_never_reached_its_broker_reports_a_growing_lag(
    clickhouse_dsn: str, database: str
) -> None:
    """A wrong bootstrap address must not look like a store that is current: the lag grows
    from when the projectors first tried, in the API and on ``/metrics``."""
    with socket.socket() as bound:  # bound, never listened on: every connection is refused
        bound.bind(("127.0.0.1", 0))
        settings = Settings(
            kafka_bootstrap=f"127.0.0.1:{bound.getsockname()[1]}",
            clickhouse_dsn=clickhouse_dsn,
            clickhouse_database=database,
        )
        began, stop, ready = time.time(), asyncio.Event(), asyncio.Future[str]()
        running = asyncio.create_task(
            run(settings, stop, role=Role(), host="127.0.0.1", port=0, on_ready=ready.set_result)
        )
        try:
            async with httpx.AsyncClient(base_url=await ready) as http:
                lags = []
                for _ in range(2):
                    await asyncio.sleep(1.5)
                    answer = (await http.get("/v1/freshness")).json()
                    shown = gauges((await http.get("/metrics")).text)
                    assert answer["lag_ms"] is not None, answer
                    lags.append(answer["lag_ms"] / 1000)
                    assert shown[("tstore_store_lag_seconds", None)] >= lags[-1]
                    assert shown[("tstore_projector_lag_seconds", None)] >= lags[-1]
                assert lags[0] < lags[1] <= time.time() - began
                assert lags[1] >= 2.5
        finally:
            stop.set()
            await running
