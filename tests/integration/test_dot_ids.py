"""Session ids ``.`` and ``..`` through the real service: an id may hold any character, sent
as one percent-encoded segment, and a client that left the dots bare had them removed as dot
segments (RFC 3986 5.2.4) before the request left, asking for another path."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from schemas import Topics
from service.client import StoreClient
from tests.integration.api_support import conversation, live_api, now

pytestmark = pytest.mark.integration

DOTTED = (".", "..", "...", "a/..", "../b")


async def test_the_client_asks_for_sessions_named_with_dots(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    at = now() - timedelta(minutes=5)
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        for session in DOTTED:
            await api.publish(conversation(session, at, turns=2))
        await api.until_projected()
        base = str(api.http.base_url).rstrip("/")

        def read(session: str) -> tuple[str, str, int]:
            with StoreClient(base) as client:
                summary = client.session(session).summary
                turns = client.turns(session)
            return summary.session_id, turns.session_id, len(turns.turns)

        for session in DOTTED:
            assert await asyncio.to_thread(read, session) == (session, session, 2)
        for session in (".", ".."):
            raw = await api.http.get(f"/v1/sessions/{session.replace('.', '%2E')}/turns")
            assert raw.status_code == 200, raw.text
            assert raw.json()["session_id"] == session
