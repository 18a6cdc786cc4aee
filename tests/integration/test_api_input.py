"""Bad and extreme input to the HTTP API: problem details naming the parameter, never a 500."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from structlog.testing import capture_logs

from consumers.storage.clickhouse import Store, connect
from queries import Reader
from queries.paging import encode_cursor, fingerprint
from queries.search import Terms
from schemas import Topics
from service.state import StoreState
from tests.integration.api_support import (
    PROBLEM_JSON,
    conversation,
    live_api,
    now,
)
from tests.integration.serving import serving

pytestmark = pytest.mark.integration

BAD_REQUESTS = [
    ("/v1/sessions?limit=0", 422, "limit"),
    ("/v1/sessions?limit=501", 422, "limit"),
    ("/v1/sessions?limit=many", 422, "limit"),
    ("/v1/sessions?since=notatime", 422, "since"),
    ("/v1/sessions?since=2026-11-31", 422, "since"),  # no such day
    ("/v1/sessions?bogus=1", 422, "bogus"),
    ("/v1/sessions?cursor=garbage", 400, "cursor"),
    ("/v1/sessions?cursor=WyJzZWFyY2giXQ", 400, "cursor"),
    ("/v1/sessions?since=2026-11-22T00:00:00Z&until=2026-11-21T00:00:00Z", 400, "since"),
    ("/v1/sessions?min_turns=5&max_turns=2", 400, "min_turns"),
    ("/v1/sessions?min_turns=-1", 422, "min_turns"),
    ("/v1/sessions?has_timeout=perhaps", 422, "has_timeout"),
    ("/v1/search", 422, "q"),
    ("/v1/search?q=", 422, "q"),
    ("/v1/search?q=%22%22", 400, "q"),
    ("/v1/search?q=" + "a" * 501, 422, "q"),
    ("/v1/search?q=hello&limit=0", 422, "limit"),
    ("/v1/search?q=hello&role=robot", 422, "role"),
    ("/v1/search?q=hello&cursor=garbage", 400, "cursor"),
    ("/v1/search?q=hello&bogus=1", 422, "bogus"),
    ("/v1/sessions/unknown", 404, "unknown"),
    ("/v1/sessions/unknown/turns", 404, "unknown"),
    ("/v1/incomplete?limit=0", 422, "limit"),
    ("/v1/incomplete?cursor=garbage", 400, "cursor"),
]


async def test_bad_input_is_answered_with_a_problem_naming_the_parameter_never_a_500(
    clickhouse: Client, clickhouse_dsn: str, database: str
) -> None:
    store = Store(clickhouse)
    await asyncio.to_thread(store.migrate)
    state = StoreState(store=store, reader=Reader(connect(clickhouse_dsn, database)))
    wrong: list[str] = []
    async with serving(state) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        with capture_logs() as logged:
            responses = [await http.get(path) for path, _, _ in BAD_REQUESTS]
        for (path, status, named), response in zip(BAD_REQUESTS, responses, strict=True):
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            if (
                response.status_code != status
                or response.headers["content-type"] != PROBLEM_JSON
                or problem.get("status") != status
                or named not in problem.get("detail", "")
            ):
                wrong.append(
                    f"GET {path}: {response.status_code} {response.headers['content-type']} "
                    f"{response.text}"
                )
            elif status in (400, 422):
                assert named in [p["name"] for p in problem["invalid_params"]], path
    assert not wrong, "\n".join(wrong)
    assert not [e for e in logged if e["event"] == "request_failed"]


MIXED_REQUESTS = [
    ("/v1/sessions?bogus=1&limit=0&since=notatime", {"bogus", "limit", "since"}),
    ("/v1/sessions?limit=many&bot=a&colour=red", {"bot", "colour", "limit"}),
    ("/v1/search?bogus=1", {"bogus", "q"}),
    ("/v1/search?q=hello&role=robot&bogus=1", {"bogus", "role"}),
    ("/v1/incomplete?limit=0&bogus=1", {"bogus", "limit"}),
    ("/v1/sessions?bot_id=a&bot_id=b", {"bot_id"}),  # not the last one silently
    ("/v1/search?q=a&q=b&limit=0&bogus=1&bogus=2", {"q", "limit", "bogus"}),
]


async def test_an_unknown_parameter_and_a_malformed_one_are_named_in_one_answer(
    clickhouse: Client, clickhouse_dsn: str, database: str
) -> None:
    """The unknown parameter stopped the request first, and its answer named it alone: a
    caller fixed it to learn of the next."""
    store = Store(clickhouse)
    await asyncio.to_thread(store.migrate)
    state = StoreState(store=store, reader=Reader(connect(clickhouse_dsn, database)))
    wrong: list[str] = []
    async with serving(state) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        for path, named in MIXED_REQUESTS:
            response = await http.get(path)
            problem = response.json()
            params = sorted(p["name"] for p in problem.get("invalid_params", []))
            if (
                response.status_code != 422
                or response.headers["content-type"] != PROBLEM_JSON
                or params != sorted(named)
                or not all(name in problem["detail"] for name in named)
            ):
                wrong.append(f"GET {path}: {response.status_code} {response.text}")
    assert not wrong, "\n".join(wrong)


PATH_VALUES = {"{session_id}": "s", "{turn_id}": "t", "{number}": "7"}


async def test_every_operation_refuses_an_unknown_parameter_naming_it(
    clickhouse: Client, clickhouse_dsn: str, database: str
) -> None:
    """Every operation of the document, admin and probes included, before it does anything
    (the stream would otherwise wait for its session, the drop look for its generation)."""
    store = Store(clickhouse)
    await asyncio.to_thread(store.migrate)
    state = StoreState(store=store, reader=Reader(connect(clickhouse_dsn, database)))
    wrong: list[str] = []
    async with serving(state) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        operations = [
            (method.upper(), path)
            for path, item in (await http.get("/openapi.json")).json()["paths"].items()
            for method in item
        ]
        for method, template in operations:
            path = template
            for name, value in PATH_VALUES.items():
                path = path.replace(name, value)
            async with http.stream(method, path, params={"bogus": "1"}) as response:
                body = await response.aread() if response.status_code == 422 else b"{}"
            named = [p["name"] for p in json.loads(body).get("invalid_params", [])]
            if response.headers["content-type"] != PROBLEM_JSON or "bogus" not in named:
                wrong.append(f"{method} {template}?bogus=1: {response.status_code} {named}")
    assert len(operations) > 20
    assert not wrong, "\n".join(wrong)


def _cursor(kind: str, asked: dict[str, Any], *key: Any) -> str:
    """A cursor as a client could edit one: its query's fingerprint kept, any sort key."""
    return encode_cursor(fingerprint(kind, asked), *key)


UNFILTERED = {"q": Terms.parse("sentence").meaning}
"""The searches below with a cursor: ``q=sentence`` alone."""


EARLIEST = "0001-01-01T00:00:00Z"
LATEST = "9999-12-31T23:59:59.999999Z"


async def test_extreme_but_well_formed_values_are_answered_never_with_a_500(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    """Times at the ends of what ISO 8601 allows (or without a zone, in UTC, as the command
    line takes them), empty names (as unset) and counts beyond 64 bits pass validation;
    the answer must then be right (everything, or nothing) or a problem naming the parameter."""
    at = now() - timedelta(hours=1)
    everything, nothing = ["extreme"], list[str]()
    cases: list[tuple[str, dict[str, Any], list[str], str]] = [
        ("/v1/sessions", {"since": EARLIEST}, everything, "since"),
        ("/v1/sessions", {"until": LATEST}, everything, "until"),
        ("/v1/sessions", {"min_turns": 2**64}, nothing, "min_turns"),
        ("/v1/sessions", {"max_turns": 2**64}, everything, "max_turns"),
        (
            "/v1/sessions",
            {"cursor": _cursor("sessions", {}, LATEST, "\uffff")},
            everything,
            "cursor",
        ),
        ("/v1/sessions", {"cursor": _cursor("sessions", {}, EARLIEST, "a")}, nothing, "cursor"),
        ("/v1/search", {"q": "sentence", "since": EARLIEST}, everything, "since"),
        ("/v1/search", {"q": "sentence", "until": LATEST}, everything, "until"),
        (
            "/v1/search",
            {"q": "sentence", "cursor": _cursor("search", UNFILTERED, EARLIEST, "a", "a")},
            nothing,
            "cursor",
        ),
        ("/v1/analytics/turns", {"since": EARLIEST, "until": LATEST}, everything, "since"),
        ("/v1/sessions", {"since": "2000-01-01"}, everything, "since"),  # no zone: UTC
        ("/v1/sessions", {"language": "", "bot_id": ""}, everything, "language"),  # unset
        ("/v1/search", {"q": "sentence", "until": "9999-12-31T00:00:00"}, everything, "until"),
        (
            "/v1/analytics/turns",
            {"since": "2000-01-01", "until": "9999-12-31"},
            everything,
            "since",
        ),
        ("/v1/analytics", {"since": EARLIEST, "until": LATEST, "bucket": "day"}, nothing, "bucket"),
    ]
    wrong: list[str] = []
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        await api.publish(conversation("extreme", at))
        await api.until_projected()
        # capture_logs: a 500's traceback is not rendered (seconds each, with its locals)
        with capture_logs() as logged:
            responses = [await api.http.get(path, params=params) for path, params, *_ in cases]
        for (path, params, expected, named), response in zip(cases, responses, strict=True):
            if response.status_code == 200:
                body = response.json()
                found = (
                    sorted({i["session_id"] for i in body["items"]})
                    if "items" in body
                    else ["extreme"] * bool(body["roles"])
                )
                if found != expected:
                    wrong.append(f"GET {path} {params}: 200 with {found}, not {expected}")
            elif response.status_code not in (400, 422) or named not in response.text:
                wrong.append(f"GET {path} {params}: {response.status_code} {response.text}")
    failed = [entry for entry in logged if entry["event"] == "request_failed"]
    reasons = [f"  {e.get('path')}: {e.get('exc_info')!r}" for e in failed]
    assert not wrong, "\n".join([*wrong, "the service logged:", *reasons])
