"""A cursor continues only the query it came from, and a time range is answered as asked,
through the HTTP API and through the command line that asks it."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from consumers.storage.clickhouse import Store, connect
from queries import Reader
from service.state import StoreState
from tests.commands import run_tstore
from tests.integration.api_support import PROBLEM_JSON
from tests.integration.serving import serving
from tests.integration.stored_rows import T0, event_rows, transcript_rows

pytestmark = pytest.mark.integration

BOTS = ("odd-bot", "simulator")
CALLS = 3
"""Calls per bot, each of a user turn and an assistant turn that both say "order"."""
FOREIGN = "cursor: belongs to another query"
REVERSED = "since: 2027-01-01T00:00:00+00:00 must be before until (2026-01-01T00:00:00+00:00)"


def _store_calls(clickhouse: Client) -> Store:
    """A store holding ``CALLS`` calls of each bot, a minute apart."""
    store = Store(clickhouse)
    store.migrate()
    for b, bot in enumerate(BOTS):
        for n in range(CALLS):
            session_id = f"{bot}-{n}"
            start = T0 + timedelta(minutes=10 * b + n)
            turns = [
                {
                    "turn_id": f"t{i}",
                    "bot_id": bot,
                    "role": role,
                    "started_at": start + timedelta(seconds=5 * i),
                    "stopped_at": start + timedelta(seconds=5 * i + 3),
                    "complete": True,
                    "seq": i,
                    "text": text,
                }
                for i, (role, text) in enumerate(
                    [("user", f"hello, where is order {n}?"), ("assistant", "your order ships")]
                )
            ]
            store.insert("transcripts", transcript_rows(session_id, turns), generation=1)
            events = event_rows(session_id, [0, 1, 2], (3, []), bot_id=bot, start=start)
            store.insert("session_events", events, generation=1)
    return store


@asynccontextmanager
async def _served(
    clickhouse: Client, clickhouse_dsn: str, database: str
) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    """The service over the calls, and its port."""
    store = await asyncio.to_thread(_store_calls, clickhouse)
    state = StoreState(store=store, reader=Reader(connect(clickhouse_dsn, database)))
    async with serving(state) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield http, int(url.rsplit(":", 1)[1])


async def _ok(http: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await http.get(path, params=params)
    assert response.status_code == 200, (path, params, response.text)
    body: dict[str, Any] = response.json()
    return body


async def _refusal(http: httpx.AsyncClient, path: str, **params: Any) -> str:
    """The detail of a 400 problem naming ``cursor`` or ``since``."""
    response = await http.get(path, params=params)
    assert response.status_code == 400, (path, params, response.text)
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert [p["name"] for p in problem["invalid_params"]] in (["cursor"], ["since"]), problem
    detail: str = problem["detail"]
    return detail


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["session_id"] for item in page["items"]]


SESSION_FILTERS: list[dict[str, Any]] = [
    {"bot_id": "simulator"},
    {},
    {"bot_id": "odd-bot", "since": "2026-01-01T00:00:00Z"},
    {"bot_id": "odd-bot", "until": "2030-01-01T00:00:00Z"},
    {"bot_id": "odd-bot", "has_interruption": "false"},
    {"bot_id": "odd-bot", "has_timeout": "false"},
    {"bot_id": "odd-bot", "min_turns": 1},
    {"bot_id": "odd-bot", "max_turns": 9},
    {"bot_id": "odd-bot", "language": "en"},
    {"bot_id": "odd-bot", "complete": "true"},
    {"bot_id": "odd-bot", "state": "sealed"},
]
"""Queries other than ``bot_id=odd-bot``: another bot, none, or one filter more."""
SEARCHES: list[dict[str, Any]] = [
    {"q": "hello"},
    {"q": "order hello"},
    {"q": '"your order"'},
    {"q": "order", "role": "user"},
    {"q": "order", "bot_id": "odd-bot"},
    {"q": "order", "since": "2026-01-01T00:00:00Z"},
    {"q": "order", "until": "2030-01-01T00:00:00Z"},
]
"""Searches other than ``q=order``: other words, or a filter more."""


async def test_a_cursor_continues_its_own_query_and_any_other_is_refused_with_400(
    clickhouse: Client, clickhouse_dsn: str, database: str
) -> None:
    async with _served(clickhouse, clickhouse_dsn, database) as (http, _):
        first = await _ok(http, "/v1/sessions", bot_id="odd-bot", limit=1)
        cursor = first["next_cursor"]
        assert cursor
        rest = await _ok(http, "/v1/sessions", bot_id="odd-bot", limit=5, cursor=cursor)
        assert _ids(first) + _ids(rest) == [f"odd-bot-{n}" for n in reversed(range(CALLS))]
        for other in SESSION_FILTERS:
            detail = await _refusal(http, "/v1/sessions", **other, cursor=cursor)
            assert detail.startswith(FOREIGN), (other, detail)
        for path, params in [("/v1/search", {"q": "order"}), ("/v1/incomplete", {})]:
            detail = await _refusal(http, path, **params, cursor=cursor)
            assert detail.startswith(FOREIGN), (path, detail)

        hits = await _ok(http, "/v1/search", q="order", limit=2)
        cursor = hits["next_cursor"]
        assert cursor
        again = await _ok(http, "/v1/search", q="ORDER", limit=2, cursor=cursor)
        assert again["items"], "the same words in another case are the same search"
        for other in SEARCHES:
            detail = await _refusal(http, "/v1/search", **other, cursor=cursor)
            assert detail.startswith(FOREIGN), (other, detail)


async def test_a_cursor_handed_out_before_cursors_held_their_query_is_a_clear_400(
    clickhouse: Client, clickhouse_dsn: str, database: str
) -> None:
    """They held their listing's kind and key alone."""
    old = [
        ("/v1/sessions", {}, ["sessions", "2026-11-20T12:01:00+00:00", "odd-bot-1"]),
        ("/v1/search", {"q": "order"}, ["search", "2026-11-20T12:01:00+00:00", "s", "t0"]),
        ("/v1/incomplete", {}, ["incomplete", "odd-bot-1"]),
    ]
    async with _served(clickhouse, clickhouse_dsn, database) as (http, _):
        for path, params, key in old:
            cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")
            detail = await _refusal(http, path, **params, cursor=cursor)
            assert "or to an older version of the store" in detail, detail


async def test_a_range_is_answered_as_asked_and_refused_only_when_reversed(
    clickhouse: Client, clickhouse_dsn: str, database: str
) -> None:
    """Bounds beyond the times the store holds select what they say: everything, or
    nothing; the analytics name the range as asked."""
    everything = sorted(f"{bot}-{n}" for bot in BOTS for n in range(CALLS))
    async with _served(clickhouse, clickhouse_dsn, database) as (http, _):
        wide = {"since": "0001-01-01", "until": "9999-12-31"}
        assert sorted(_ids(await _ok(http, "/v1/sessions", **wide))) == everything
        hits = (await _ok(http, "/v1/search", q="order", **wide))["items"]
        assert len(hits) == 2 * len(BOTS) * CALLS
        turns = await _ok(http, "/v1/analytics/turns", **wide)
        assert (turns["since"], turns["until"]) == ("0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z")
        assert sum(r["turns"] for r in turns["roles"].values()) == 2 * len(BOTS) * CALLS

        beyond = {"since": "2300-01-01", "until": "2400-01-01"}  # both past the store's end
        assert _ids(await _ok(http, "/v1/sessions", **beyond)) == []
        assert (await _ok(http, "/v1/search", q="order", **beyond))["items"] == []
        assert (await _ok(http, "/v1/analytics/turns", **beyond))["roles"] == {}

        reversed_ = {"since": "2027-01-01", "until": "2026-01-01"}
        for path, params in [
            ("/v1/sessions", {}),
            ("/v1/search", {"q": "order"}),
            ("/v1/analytics/turns", {}),
        ]:
            assert await _refusal(http, path, **params, **reversed_) == REVERSED

        unheld = await http.get("/v1/sessions", params={"since": "0001-01-01T00:00:00+05:00"})
        assert unheld.status_code == 422, unheld.text
        assert "falls outside the years 1 to 9999 in UTC" in unheld.text


async def test_the_command_line_pages_and_refuses_as_the_api_does(
    clickhouse: Client, clickhouse_dsn: str, database: str, tmp_path: Path
) -> None:
    async with _served(clickhouse, clickhouse_dsn, database) as (_, port):

        async def tstore(*args: str) -> tuple[int, str]:
            done = await asyncio.to_thread(
                run_tstore, *args, cwd=tmp_path, TSTORE_HTTP_PORT=str(port)
            )
            return done.returncode, (done.stdout + done.stderr).strip()

        code, said = await tstore("sessions", "--bot", "odd-bot", "--limit", "1")
        assert code == 0, said
        cursor = said.rsplit("more: --cursor ", 1)[1].split()[0]
        code, said = await tstore("sessions", "--bot", "odd-bot", "--cursor", cursor)
        assert code == 0, said
        for args in (["--bot", "simulator"], [], ["--bot", "odd-bot", "--complete"]):
            code, said = await tstore("sessions", *args, "--cursor", cursor)
            assert code == 1, said
            assert said.startswith(FOREIGN), said
            assert len(said.splitlines()) == 1, said

        code, said = await tstore("sessions", "--since", "2027-01-01", "--until", "2026-01-01")
        assert (code, said) == (1, REVERSED)
        code, said = await tstore("sessions", "--since", "1800-01-01", "--until", "9999-12-31")
        assert code == 0, said
        assert "no session matches" not in said
        code, said = await tstore("stats", "--since", "1800-01-01", "--until", "1850-01-01")
        assert code == 0, said
        assert "no turn started between" in said
        code, said = await tstore("stats", "--until", "0001-01-01")  # no day before it
        assert code == 1, said
        assert said.startswith("since: 0001-01-01T00:00:00+00:00 must be before until"), said
