"""A running query service for the API tests: the live projectors fill a store from Kafka
beside the service, as ``tstore serve`` runs them in embedded mode."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from consumers.admin import RebuildService
from consumers.live import run_live
from consumers.live_feed import LiveFeed
from consumers.metrics import ProjectorMetrics
from consumers.projector import group_for
from consumers.storage.clickhouse import Store, connect
from producers import EventPublisher
from queries import Reader
from queries.facts import FactsKeeper
from schemas import Topics, TurnStarted, TurnStopped
from schemas.models import Event
from service.process import keep_facts
from service.state import StoreState
from tests.conftest import unique_name
from tests.events import chunk, envelope
from tests.integration.reading import committed_total
from tests.integration.serving import serving

PROBLEM_JSON = "application/problem+json"
FRESHNESS = ("as_of", "lag_ms")


@dataclass
class Api:
    """A running service over a store that live projectors keep filling from ``topics``."""

    http: httpx.AsyncClient
    store: Store
    reader: Reader
    metrics: ProjectorMetrics
    group: str
    topics: Topics
    bootstrap: str
    publisher: EventPublisher
    published: int = 0
    live: asyncio.Task[None] | None = field(default=None, repr=False)

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish and wait for every acknowledgement."""
        await self.publisher.publish_all(events)
        self.published += len(events)

    async def until_projected(self, within_s: float = 90) -> None:
        """Until the live group has committed every record published so far: each one is
        then in the store (the projector commits only after writing)."""
        deadline = time.monotonic() + within_s
        group = group_for(self.group, self.store, 1)
        while (committed := await committed_total(self.bootstrap, group)) < self.published:
            if self.live is not None and self.live.done():
                self.live.result()  # raises what stopped the projectors
                pytest.fail("the live projectors stopped")
            assert time.monotonic() < deadline, f"{committed} of {self.published} projected"
            await asyncio.sleep(0.2)

    async def until_cached(self, within_s: float = 60) -> None:
        """Until the caches' mark (``queries.facts``) is past everything projected: reads then
        take every session from the caches."""
        deadline = time.monotonic() + within_s
        marked = (
            "SELECT (SELECT max(through) FROM session_facts_marks) "
            ">= (SELECT max(projected_at) FROM projected_sessions)"
        )
        while not self.store.client.query(marked).result_rows[0][0]:
            assert time.monotonic() < deadline, "the caches were never marked past the store"
            await asyncio.sleep(0.2)

    async def ok(self, path: str, **params: Any) -> dict[str, Any]:
        response = await self.http.get(path, params=params or None)
        assert response.status_code == 200, (path, params, response.text)
        body: dict[str, Any] = response.json()
        return body


@asynccontextmanager
async def live_api(
    bootstrap: str,
    topics: Topics,
    clickhouse_dsn: str,
    database: str,
    *,
    rebuilds: bool = False,
    store: Store | None = None,
    feed: LiveFeed | None = None,
    token: str | None = None,
    cached: bool = False,
) -> AsyncIterator[Api]:
    """The service as ``tstore serve`` runs it in embedded mode: one store client for the
    projectors (and rebuilds), another for the queries, the projectors' metrics for the lag;
    with ``token``, its API needs it, and the test's client sends it; ``cached``, its caches
    are kept as ``tstore serve`` keeps them (``queries.facts``)."""
    store = store or Store(connect(clickhouse_dsn, database))
    await asyncio.to_thread(store.migrate)
    reader = Reader(connect(clickhouse_dsn, database))
    metrics = ProjectorMetrics()
    feed = feed or LiveFeed()
    group = unique_name("g")
    stop = asyncio.Event()
    live = asyncio.create_task(
        run_live(
            stop,
            bootstrap=bootstrap,
            topics=topics,
            base_group=group,
            store=store,
            metrics=metrics,
            on_written=feed.publish,
            check_every_s=0.1,
        )
    )
    service = (
        RebuildService(bootstrap=bootstrap, topics=topics, store=store, base_group=group)
        if rebuilds
        else None
    )
    state = StoreState(
        store=store,
        reader=reader,
        projecting=True,
        metrics=metrics,
        rebuilds=service,
        feed=feed,
        token=token,
    )
    bearer = {"Authorization": f"Bearer {token}"} if token else {}
    keeper = (
        FactsKeeper(connect(clickhouse_dsn, database), connect(clickhouse_dsn, database))
        if cached
        else None
    )
    keeping = asyncio.create_task(keep_facts(keeper, stop)) if keeper else None
    try:
        async with (
            serving(state) as url,
            httpx.AsyncClient(base_url=url, timeout=60, headers=bearer) as http,
            EventPublisher(bootstrap, topics) as publisher,
        ):
            yield Api(http, store, reader, metrics, group, topics, bootstrap, publisher, live=live)
    finally:
        stop.set()
        await asyncio.wait_for(live, 60)
        if keeping is not None:
            await asyncio.wait_for(keeping, 60)


def conversation(
    session_id: str,
    at: datetime,
    *,
    turns: int = 4,
    texts: Sequence[str] = (),
    bot_id: str = "api-bot",
    seq: int = 0,
) -> list[Event]:
    """A call of ``turns`` turns, user first, 3 s apart, each 2 s long (so each assistant turn
    answers 1 s after the user stopped); ``texts`` replace the first turns' texts."""
    events: list[Event] = []
    for index in range(turns):
        role = "user" if index % 2 == 0 else "assistant"
        started = at + timedelta(seconds=3 * index)
        stopped = started + timedelta(seconds=2)
        turn: dict[str, Any] = {"turn_id": f"turn-{index}", "role": role, "started_at": started}
        text = texts[index] if index < len(texts) else f"{role} says sentence number {index}."
        events.append(
            TurnStarted(**envelope(seq, session_id, bot_id=bot_id, occurred_at=started), **turn)
        )
        events.append(
            TurnStopped(
                **envelope(seq + 1, session_id, bot_id=bot_id, occurred_at=stopped),
                **turn,
                stopped_at=stopped,
                text=text,
            )
        )
        seq += 2
    return events


def chunks(session_id: str, at: datetime, *, seq: int, bot_id: str = "api-bot") -> list[Event]:
    """One audio chunk per track, numbered from ``seq``, of ``conversation``'s bot."""
    return [
        chunk(
            seq + n,
            session_id,
            bot_id=bot_id,
            chunk_id=f"{session_id}-{track}-0",
            track=track,
            uri=f"file:///chunks/{session_id}/{track}-0.wav",
            recording_started_at=at,
        )
        for n, track in enumerate(("user", "assistant"))
    ]


VERDICT = ("complete", "events", "expected", "missing", "open_turns", "state", "holes")
"""A completeness answer's counts and verdict: what a test that does not look at the times and
tracks compares."""


def verdict(completeness: dict[str, Any]) -> dict[str, Any]:
    return {k: completeness[k] for k in VERDICT}


def without_freshness(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in FRESHNESS}


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
