"""The broker killed for 30 s under a running ``tstore project`` while a bot talks (issue 14):
the projector keeps running and catches up, every turn is in the store exactly once, and its
``/metrics`` show the outage as lag while it lasts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumers.lag import oldest_unprojected_age_s
from consumers.metrics import BLIND_AFTER_S
from consumers.topics_admin import ensure_topics
from producers import DeliveryConfig, TranscriptProducer
from schemas import Topics
from tests.conftest import unique_name
from tests.integration.reading import store_group
from tests.waiting import until
from tstore.devkafka import DevKafka
from tstore.devkafka.broker import free_port

pytestmark = pytest.mark.integration

TSTORE = str(Path(sys.executable).with_name("tstore"))
OUTAGE_S = 30.0
SESSIONS = 20
TURNS = 60
TURN_EVERY_S = 0.8
"""Per session: 20 sessions x 2 events every 0.8 s is 50 events/s, for 48 s."""
PARTITIONS = 3
DATABASE = "outage"
STARTS_WITHIN_S = 180.0
"""Opening the store and joining the group, on two busy cores."""

_VERIFY = """
import json, sys
from consumers.storage.clickhouse import connect

client = connect(sys.argv[1], sys.argv[2])
rows = lambda sql: [list(r) for r in client.query(sql).result_rows]
print(json.dumps({
    "turns": rows("SELECT session_id, turn_id, count(), countIf(complete) FROM transcripts "
                  "GROUP BY session_id, turn_id"),
    "events": rows("SELECT count(), uniqExact(event_id), uniqExact(session_id, seq) "
                   "FROM session_events")[0],
    "incomplete": rows("SELECT session_id FROM session_completeness WHERE missing > 0"),
    "stored_turn_rows": rows("SELECT count() FROM transcripts_generations")[0][0],
}))
"""


@dataclass
class Scrape:
    at: float
    """``time.monotonic()`` when it was taken."""
    lag_s: float | None
    events: float | None
    ready: tuple[int, str] | None
    """``/readyz``: status code and ``detail``."""


@dataclass
class Projecting:
    """A running ``tstore project`` and what it wrote."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    scrapes: list[Scrape] = field(default_factory=list)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def scrape(self) -> Scrape:
        values: dict[str, float] = {}
        ready = None
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                text = (await client.get(f"{self.url}/metrics")).text
                answer = await client.get(f"{self.url}/readyz")
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    values.setdefault(sample.name, sample.value)
            ready = (answer.status_code, answer.json().get("detail", ""))
        except httpx.HTTPError:
            pass
        scraped = Scrape(
            time.monotonic(),
            values.get("tstore_projector_lag_seconds"),
            values.get("tstore_projector_events_total"),
            ready,
        )
        self.scrapes.append(scraped)
        return scraped

    def assert_running(self, when: str) -> None:
        code = self.process.poll()
        assert code is None, f"tstore project exited ({code}) {when}:\n{self.output()[-5000:]}"


def _start_projector(bootstrap: str, topics: Topics, group: str, folder: Path) -> Projecting:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSTORE_")} | {
        "PYTHONUNBUFFERED": "1",
        "TSTORE_KAFKA_BOOTSTRAP": bootstrap,
        "TSTORE_TOPIC_PREFIX": topics.prefix,
        "TSTORE_TOPIC_PARTITIONS": str(PARTITIONS),
        "TSTORE_CLICKHOUSE_DSN": f"chdb://{folder / 'clickhouse'}",
        "TSTORE_CLICKHOUSE_DATABASE": DATABASE,
        "TSTORE_CONSUMER_GROUP": group,
        "TSTORE_CONSUMER_SESSION_TIMEOUT_MS": "3000",
        "TSTORE_HTTP_PORT": str(port),
        "TSTORE_LOG_FORMAT": "json",
    }
    log = folder / "projector.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [TSTORE, "project"], env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT
        )
    return Projecting(process, f"http://127.0.0.1:{port}", log)


async def _ready(projecting: Projecting) -> None:
    deadline = time.monotonic() + STARTS_WITHIN_S
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            projecting.assert_running("while starting")
            try:
                if (await client.get(f"{projecting.url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not ready:\n{projecting.output()}"
            await asyncio.sleep(0.25)


async def _bot_session(producer: TranscriptProducer, session: str) -> None:
    for turn in range(TURNS):
        started = datetime.now(UTC)
        producer.turn_started(session, f"t{turn}", "user", started_at=started)
        producer.turn_stopped(session, f"t{turn}", "user", text=f"turn {turn}", started_at=started)
        await asyncio.sleep(TURN_EVERY_S)


async def test_a_30s_broker_outage_under_tstore_project_loses_and_doubles_nothing(
    own_broker: DevKafka, tmp_path: Path
) -> None:
    began = time.monotonic()
    topics = Topics(f"{unique_name('outage')}.")
    group = unique_name("outage")
    await ensure_topics(own_broker.bootstrap, topics, partitions=PARTITIONS)
    projecting = _start_projector(own_broker.bootstrap, topics, group, tmp_path)
    try:
        await _ready(projecting)
        producer = TranscriptProducer(
            own_broker.bootstrap,
            bot_id="bot",
            topics=topics,
            spool_dir=tmp_path / "spool",
            delivery=DeliveryConfig(memory_events=200, request_timeout_ms=3_000, retry_pause_s=0.2),
        )
        async with producer:
            talking = asyncio.gather(
                *(_bot_session(producer, f"s{n:02d}") for n in range(SESSIONS))
            )
            projected_before = await _projecting_some(projecting)

            await asyncio.to_thread(own_broker.kill)
            killed = time.monotonic()
            while time.monotonic() - killed < OUTAGE_S:
                await projecting.scrape()
                projecting.assert_running("during the outage")
                await asyncio.sleep(1.0)
            spooled = producer.stats.spooled
            await asyncio.to_thread(own_broker.start)
            restarted = time.monotonic()

            await talking
            await until(
                lambda: producer.stats.backlog == 0 and producer.stats.spool_bytes == 0,
                60,
                "the bot delivered everything it said",
            )
        stats = producer.stats
        live_group = await store_group(own_broker.bootstrap, group, 1)
        assert live_group is not None, "the projector never joined its group"
        await _caught_up(projecting, own_broker.bootstrap, topics, live_group)
        caught_up = await projecting.scrape()
        projecting.assert_running("after catching up")
        projecting.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(projecting.process.wait, 30)
    finally:
        if projecting.process.poll() is None:
            projecting.process.kill()
            projecting.process.wait()
    output = projecting.output()
    assert code == 0, output[-5000:]
    outage = [(round(s.at - killed, 1), s.lag_s) for s in projecting.scrapes if s.at >= killed]
    print(f"projected before the kill: {projected_before:.0f} events; lag during the outage:")
    print(outage)
    print(f"broker back {restarted - killed:.1f}s after the kill; {stats}")

    assert stats.dropped == 0
    assert spooled > 0, "the bot kept talking into its spool while the broker was down"
    blind = [(at, lag) for at, lag in outage if BLIND_AFTER_S + 2 <= at < OUTAGE_S]
    assert len(blind) >= (OUTAGE_S - BLIND_AFTER_S) / 2, f"/metrics did not answer: {outage}"
    lags = [lag for _, lag in blind if lag is not None]
    assert len(lags) == len(blind), outage
    # the last fetch answered before the kill: the lag is at least the time since
    assert all(lag >= at - 2 for (at, _), lag in zip(blind, lags, strict=True)), outage
    assert lags == sorted(lags), outage
    assert caught_up.lag_s is not None
    assert caught_up.lag_s < BLIND_AFTER_S, caught_up
    # ready throughout: queries are answered, and /readyz says the broker is not heard
    readiness = [(round(s.at - killed, 1), s.ready) for s in projecting.scrapes if s.at >= killed]
    unheard = [ready for at, ready in readiness if BLIND_AFTER_S + 2 <= at < OUTAGE_S]
    assert all(r is not None and r[0] == 200 and "Kafka" in r[1] for r in unheard), readiness
    assert caught_up.ready == (200, ""), caught_up

    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    said = [line["event"] for line in lines]
    assert "kafka_unreachable" in said, said[-50:]
    assert "kafka_reachable" in said, said[-50:]
    assert "projector_stopped" not in said, "the projectors were restarted, not kept running"
    assert "Traceback" not in output, output[-5000:]

    result = await _stored(tmp_path)
    print(f"stored: {result['events']} events, {result['stored_turn_rows']} turn rows")
    print(f"took {time.monotonic() - began:.1f}s")
    turns = {(s, t): (n, c) for s, t, n, c in result["turns"]}
    assert set(turns) == {(f"s{n:02d}", f"t{t}") for n in range(SESSIONS) for t in range(TURNS)}
    assert {turn: seen for turn, seen in turns.items() if seen != (1, 1)} == {}, "doubled"
    events = SESSIONS * TURNS * 2
    assert result["events"] == [events, events, events]
    assert result["incomplete"] == []


async def _projecting_some(projecting: Projecting, events: int = 200) -> float:
    """Wait until the projector has projected ``events``; how many it has."""
    deadline = time.monotonic() + 60
    while ((scraped := await projecting.scrape()).events or 0) < events:
        projecting.assert_running("before the outage")
        assert time.monotonic() < deadline, f"nothing projected:\n{projecting.output()}"
        await asyncio.sleep(0.5)
    return scraped.events or 0


async def _caught_up(projecting: Projecting, bootstrap: str, topics: Topics, group: str) -> None:
    """Wait until ``group`` has committed past every record on the topics."""
    deadline = time.monotonic() + 60
    while await oldest_unprojected_age_s(bootstrap, topics, [group]) > 0:
        projecting.assert_running("while catching up")
        assert time.monotonic() < deadline, f"did not catch up:\n{projecting.output()[-5000:]}"
        await asyncio.sleep(0.5)


async def _stored(folder: Path) -> dict[str, Any]:
    """What the store holds, read by a process of its own once the projector has let go
    (chDB: one process per data path, and this one may hold the session's)."""
    verify = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _VERIFY, f"chdb://{folder / 'clickhouse'}", DATABASE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stderr[-3000:]
    result: dict[str, Any] = json.loads(verify.stdout.strip().splitlines()[-1])
    return result
