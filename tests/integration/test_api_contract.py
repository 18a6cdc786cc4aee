"""The HTTP API against its own OpenAPI document (schemathesis): every operation, with valid
and invalid input, on a store that holds projected sessions, answers without a 500 and only
with the status codes, content types and bodies the document declares.

The app is served in this process (``serving``, on a loopback port, so the admin routes
take the caller for this machine's) from a thread of its own; schemathesis calls it over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

import pytest
import schemathesis
import structlog
from hypothesis import HealthCheck, given, settings
from schemathesis import Case as AnyCase
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from bench.codec import realistic_events
from consumers.admin import RebuildService
from consumers.live import live_projectors
from consumers.storage.clickhouse import Store, connect, open_store
from consumers.topics_admin import ensure_topics
from producers import EventPublisher
from queries import Reader
from schemas import ChunkReady, Topics, TurnStarted, TurnStopped, WordTiming
from schemas.models import Event
from service.app import create_app
from service.state import StoreState
from tests.conftest import TEST_PARTITIONS, unique_name
from tests.events import envelope
from tests.integration.serving import serving
from tstore.logging import configure_logging

pytestmark = pytest.mark.integration


def _without_tuples(node: Any) -> Any:
    """The document with every fixed-length array (``prefixItems``, how pydantic writes a
    tuple) loosened to an array of that length whose items may be any of the positions'
    types. schemathesis 4.32 rewrites ``prefixItems`` into draft-4 ``items: [...]`` and then
    fails to build a 2020-12 validator for the response; the app's document is valid."""
    if isinstance(node, list):
        return [_without_tuples(n) for n in node]
    if not isinstance(node, dict):
        return node
    loosened = {k: _without_tuples(v) for k, v in node.items()}
    positions = loosened.pop("prefixItems", None)
    if positions is not None:
        loosened.setdefault("items", {"anyOf": positions})
    return loosened


schema = schemathesis.openapi.from_dict(
    _without_tuples(create_app(StoreState()).openapi()),
    # Examples and fuzzing, valid and invalid input; the coverage phase's hundreds of boundary
    # cases per operation are left out (the edges that matter are chosen below).
    config=schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}}),
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
BOUNDED = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
NOW = datetime.now(UTC).replace(microsecond=0)
SESSION_IDS = ["recent-1", "recent-2", "s/with slash", "hours-ago", "days-ago", "weeks-ago"]
INCOMPLETE_ID = "incomplete-1"

Test = Callable[..., None]
Case = AnyCase[Any]


def _conversation(
    session_id: str,
    at: datetime,
    *,
    bot_id: str = "support-bot",
    language: str | None = None,
    interrupted: bool = False,
    timed_out: bool = False,
) -> list[Event]:
    """A user turn (with word timings), an assistant answer and an audio chunk."""

    def env(seq: int, when: datetime) -> dict[str, Any]:
        return envelope(seq, session_id, bot_id=bot_id, occurred_at=when)

    answer_at = at + timedelta(seconds=3)
    return [
        TurnStarted(**env(0, at), turn_id="u1", role="user", started_at=at),
        TurnStopped(
            **env(1, at + timedelta(seconds=2)),
            turn_id="u1",
            role="user",
            started_at=at,
            stopped_at=at + timedelta(seconds=2),
            text='Where is my ORDER? It\'s <late> & "lost"',
            timed_out=timed_out,
            language=language,
            user_id="caller-7",
            words=(WordTiming(text="Where", start=0.0, end=0.3),),
        ),
        TurnStarted(**env(2, answer_at), turn_id="a1", role="assistant", started_at=answer_at),
        TurnStopped(
            **env(3, answer_at + timedelta(seconds=3)),
            turn_id="a1",
            role="assistant",
            started_at=answer_at,
            stopped_at=answer_at + timedelta(seconds=3),
            text="Let me look up your order number.",
            interrupted=interrupted,
            language=language,
        ),
        ChunkReady(
            **env(4, answer_at + timedelta(seconds=3)),
            chunk_id=f"{session_id}-c0",
            track="user",
            chunk_seq=0,
            uri="file:///var/lib/tstore/chunks/c0.wav",
            format="wav",
            sample_rate=16000,
            channels=1,
            start_sample=0,
            num_samples=16000 * 6,
            recording_started_at=at,
            byte_size=192_044,
            sha256="0" * 64,
        ),
    ]


def _events() -> list[Event]:
    events = [
        *_conversation("recent-1", NOW - timedelta(minutes=10), language="en-US"),
        *_conversation(
            "recent-2", NOW - timedelta(minutes=20), bot_id="sales-bot", interrupted=True
        ),
        *_conversation("s/with slash", NOW - timedelta(minutes=30), timed_out=True),
        *_conversation("hours-ago", NOW - timedelta(hours=5), language="de"),
        *_conversation("days-ago", NOW - timedelta(days=3), bot_id="sales-bot"),
        *_conversation("weeks-ago", NOW - timedelta(days=40)),
        *realistic_events(180),  # three more sessions of a support bot, 2026-11-21
    ]
    opened = NOW - timedelta(minutes=5)
    events += [  # a turn that never stopped, and events 1 and 2 never arrived
        TurnStarted(
            **envelope(0, INCOMPLETE_ID, occurred_at=opened),
            turn_id="open",
            role="user",
            started_at=opened,
        ),
        *_conversation(INCOMPLETE_ID, opened)[3:4],
    ]
    return events


async def _publish_and_project(bootstrap: str, topics: Topics, store: Store) -> None:
    await ensure_topics(bootstrap, topics, partitions=TEST_PARTITIONS)
    async with EventPublisher(bootstrap, topics) as publisher:
        await publisher.publish_all(_events())
    for projector in await live_projectors(
        bootstrap=bootstrap, topics=topics, base_group=unique_name("api"), store=store
    ):
        async with projector:
            await projector.catch_up()


class Served:
    """``serving(state)`` on an event loop in a thread of its own, for synchronous tests."""

    def __init__(self, state: StoreState) -> None:
        self._state = state
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="api-under-test", daemon=True)
        self.url = ""

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with serving(self._state) as url:
            self.url = url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Served:
        self._thread.start()
        assert self._ready.wait(60), "the app did not start serving"
        if self._failure is not None:
            raise self._failure
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def store_state(kafka_bootstrap: str, clickhouse_dsn: str) -> Iterator[StoreState]:
    """A store with some projected sessions, a reader, and a rebuild service; logging as
    ``tstore serve`` configures it (a failed request logs a plain traceback)."""
    configure_logging("console")
    topics = Topics(prefix=f"{unique_name('api')}.")
    database = unique_name("api")
    store = open_store(clickhouse_dsn, database)
    asyncio.run(_publish_and_project(kafka_bootstrap, topics, store))
    rebuilds = RebuildService(
        bootstrap=kafka_bootstrap, topics=topics, store=store, base_group=unique_name("api")
    )
    try:
        yield StoreState(
            store=store, reader=Reader(connect(clickhouse_dsn, database)), rebuilds=rebuilds
        )
    finally:
        connect(clickhouse_dsn, database).command(f"DROP DATABASE IF EXISTS `{database}`")
        structlog.reset_defaults()


@pytest.fixture(scope="module")
def base_url(store_state: StoreState) -> Iterator[str]:
    with Served(store_state) as served:
        yield served.url


def test_the_store_holds_what_the_operations_are_tried_on(store_state: StoreState) -> None:
    """Not a contract check: that the contract is checked on a store with something in it."""
    reader = store_state.reader
    assert reader is not None
    ids = {str(r[0]) for r in reader.rows("SELECT DISTINCT session_id FROM transcripts")}
    assert {*SESSION_IDS, INCOMPLETE_ID} <= ids
    assert len(ids) >= 10


# Starting a real rebuild would replace the store under the other operations: that route is
# tried below with ``dry_run`` always set. Dropping a generation is tried as it is: the store
# has only its live generation, which it refuses to drop. A session's stream never ends by
# itself (test_live_stream reads it, and holds its bad ids and tokens to the others').
parametrize = cast(
    Callable[[Test], Test],
    schema.exclude(method="POST", path="/v1/admin/rebuild")
    .exclude(path="/v1/sessions/{session_id}/stream")
    .parametrize(),
)


@parametrize
@BOUNDED
def test_every_operation_keeps_to_the_document(case: Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS)


REBUILD = schema["/v1/admin/rebuild"]["POST"]


def _dry(case: Case) -> Case:
    if isinstance(case.body, dict):
        case.body["dry_run"] = True
    return case


@BOUNDED
@given(
    case=REBUILD.as_strategy(GenerationMode.POSITIVE).map(_dry)
    | REBUILD.as_strategy(GenerationMode.NEGATIVE).map(_dry)
)
def test_planning_a_rebuild_keeps_to_the_document(case: Case, base_url: str) -> None:
    assert not isinstance(case.body, dict) or case.body["dry_run"] is True
    case.call_and_validate(base_url=base_url, checks=CHECKS)


SESSION = "/v1/sessions/{session_id}"
NESTED_CURSOR = base64.urlsafe_b64encode(b"[" * 1500).decode()
"""Not a cursor: JSON nested deeper than Python's recursion limit."""
TURNS = "/v1/sessions/{session_id}/turns"


CHOSEN: list[tuple[str, dict[str, Any]]] = [
    ("/v1/sessions", {"limit": 500}),
    ("/v1/sessions", {"bot_id": "sales-bot", "has_interruption": "true"}),
    ("/v1/sessions", {"language": "de"}),
    ("/v1/sessions", {"complete": "false"}),
    ("/v1/sessions", {"min_turns": 2, "max_turns": 2}),
    ("/v1/sessions", {"min_turns": 3, "max_turns": 2}),
    ("/v1/sessions", {"since": "2026-11-22T00:00:00+01:00", "until": "2026-11-21T00:00:00Z"}),
    ("/v1/sessions", {"cursor": "not-a-cursor"}),
    ("/v1/sessions", {"cursor": NESTED_CURSOR}),
    ("/v1/sessions", {"until": "0001-01-01T00:00:00Z"}),
    ("/v1/sessions", {"until": "0001-01-01T00:30:00Z", "since": "0001-01-01T00:00:00Z"}),
    ("/v1/sessions", {"until": "9999-12-31T23:59:59.999999Z"}),
    ("/v1/sessions", {"since": "0001-01-01T00:00:00Z"}),
    ("/v1/sessions", {"min_turns": 2**64}),
    (SESSION, {"session_id": "recent-1"}),
    (SESSION, {"session_id": "session-000000"}),
    (SESSION, {"session_id": "nobody"}),
    (TURNS, {"session_id": "recent-1"}),
    (TURNS, {"session_id": "session-000000"}),
    (TURNS, {"session_id": "nobody"}),
    ("/v1/search", {"q": 'order "where is"'}),
    ("/v1/search", {"q": "ORDER", "role": "user", "limit": 1}),
    ("/v1/search", {"q": "?!"}),
    ("/v1/search", {"q": "order", "until": "0001-01-01T00:00:00Z"}),
    ("/v1/search", {"q": "order", "since": "9999-12-31T23:59:59.999999Z"}),
    ("/v1/incomplete", {"limit": 1}),
    ("/v1/incomplete", {"cursor": NESTED_CURSOR}),
    ("/v1/analytics/turns", {"since": "2026-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"}),
    ("/v1/analytics/turns", {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59Z"}),
    ("/v1/analytics", {"since": "2026-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"}),
    (
        "/v1/analytics",
        {"since": "0001-01-01T00:00:00Z", "until": "0001-01-02T00:00Z", "bucket": "minute"},
    ),
    (
        "/v1/analytics",
        {"since": "2026-01-01T00:00:00Z", "until": "2027-01-01T00:00Z", "group_by": "language"},
    ),
    ("/v1/admin/generations", {}),
    ("/v1/admin/rebuild", {}),
]


@pytest.mark.parametrize(
    ("path", "parameters"), CHOSEN, ids=[f"{path} {query}"[:90] for path, query in CHOSEN]
)
def test_chosen_requests_keep_to_the_document(
    path: str, parameters: dict[str, Any], base_url: str
) -> None:
    """Requests on the data the store holds and at the edges of what parameters allow."""
    operation = schema[path]["GET"]
    if "{session_id}" in path:
        case = operation.Case(path_parameters=parameters)
    else:
        case = operation.Case(query=parameters)
    case.call_and_validate(base_url=base_url, checks=CHECKS)


@pytest.mark.parametrize("path", [SESSION, TURNS])
def test_a_session_whose_id_holds_a_slash_is_read_like_any_other(path: str, base_url: str) -> None:
    """Session ids are any string of up to 256 characters (a LiveKit room name, say); the
    client sends them percent-encoded as one path segment (schemathesis sends a value given
    here as it is)."""
    sent = quote("s/with slash", safe="")
    case = schema[path]["GET"].Case(path_parameters={"session_id": sent})
    response = case.call_and_validate(base_url=base_url, checks=CHECKS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body if path == TURNS else body["summary"])["session_id"] == "s/with slash"


def test_a_dropped_generation_is_refused_as_the_document_says(base_url: str) -> None:
    """The store's only generation is live: dropping it is refused with 409; one that does not
    exist is not found (404)."""
    drop = schema["/v1/admin/generations/{number}"]["DELETE"]
    for number, status in ((1, 409), (7, 404)):
        case = drop.Case(path_parameters={"number": number})
        response = case.call(base_url=base_url)
        assert response.status_code == status, response.text
        case.validate_response(response, checks=CHECKS)


def test_listing_pages_join_without_gaps_or_repeats(base_url: str) -> None:
    """Not only the shape: walking ``next_cursor`` with limit 1 lists every session once,
    newest first."""
    listing = schema["/v1/sessions"]["GET"]
    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    for _ in range(50):
        query: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        case = listing.Case(query=query)
        response = case.call_and_validate(base_url=base_url, checks=CHECKS)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [(i["first_event_at"], i["session_id"]) for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [sid for _, sid in seen][:3] == ["incomplete-1", "recent-1", "recent-2"]
    assert len(seen) == len(set(seen)) >= 10
    assert seen == sorted(seen, reverse=True)


def test_every_problem_answer_is_documented_as_problem_json() -> None:
    """Problems are sent as ``application/problem+json`` whatever the route's own media type:
    the stream's 200 is ``text/event-stream``, its 400, 401, 404, 422 and 503 are problems."""
    document = create_app(StoreState()).openapi()
    problems = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                for media_type, body in content.items():
                    if body.get("schema", {}).get("$ref") == "#/components/schemas/Problem":
                        problems[(method, path, status)] = list(content)
                        assert media_type == "application/problem+json", (method, path, status)
    stream = document["paths"]["/v1/sessions/{session_id}/stream"]["get"]["responses"]
    assert list(stream["200"]["content"]) == ["text/event-stream"]
    for status in ("400", "401", "404", "422", "503"):
        assert problems[("get", "/v1/sessions/{session_id}/stream", status)] == [
            "application/problem+json"
        ]


def test_the_stream_refuses_a_malformed_id_as_the_document_says(base_url: str) -> None:
    """A refused stream is answered at once, with the problem its document declares."""
    case = schema["/v1/sessions/{session_id}/stream"]["GET"].Case(
        path_parameters={"session_id": "x" * 300}
    )
    response = case.call(base_url=base_url, timeout=30)
    assert response.status_code == 422, response.text
    case.validate_response(response, checks=CHECKS)
