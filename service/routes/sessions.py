"""``/v1/sessions``: the newest-first listing, one session in full, its transcript."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import ConfigDict, Field

from queries import Reader, SessionFilters
from queries.live import Cursor
from queries.paging import MAX_PAGE
from queries.sessions import list_sessions, session_detail, transcript
from service.answers import SessionAnswer, SessionsAnswer, TurnsAnswer, respond
from service.auth import bearer, state_of
from service.live_stream import follow
from service.parameters import KNOWN_PARAMETERS
from service.paths import PathId
from service.problems import PROBLEM_RESPONSES
from service.state import StoreState

router = APIRouter(
    prefix="/v1", tags=["sessions"], dependencies=[Depends(bearer), KNOWN_PARAMETERS]
)
State = Annotated[StoreState, Depends(state_of)]


class SessionQuery(SessionFilters):
    model_config = ConfigDict(frozen=True)

    cursor: str | None = Field(None, description="From the previous page's `next_cursor`.")
    limit: int = Field(50, ge=1, le=MAX_PAGE)


@router.get("/sessions", response_model=SessionsAnswer, responses=PROBLEM_RESPONSES)
def sessions(state: State, query: Annotated[SessionQuery, Query()]) -> Response:
    """Sessions, newest first by their first event, with filters; pages of up to
    ``limit`` (at most 500) joined by an opaque ``cursor``. Each session's completeness says
    whether it is open, sealed, sealed with holes or abandoned (``state``)."""
    filters = SessionFilters(**query.model_dump(exclude={"cursor", "limit"}))
    page = list_sessions(state.ready_reader(), filters, cursor=query.cursor, limit=query.limit)
    return respond(SessionsAnswer, state.freshness(), page)


@router.get(
    "/sessions/{session_id:segment}/turns", response_model=TurnsAnswer, responses=PROBLEM_RESPONSES
)
def turns(state: State, session_id: PathId) -> Response:
    """Only the transcript: the session's turns in speaking order (the cheapest read)."""
    found = transcript(state.ready_reader(), session_id)
    return respond(TurnsAnswer, state.freshness(), session_id=session_id, turns=found)


def ready_reader(state: State) -> Reader:
    return state.ready_reader()


def resumed_from(
    last_event_id: Annotated[
        str | None,
        Header(description="A reconnecting client's last event id: what it holds is not sent."),
    ] = None,
) -> Cursor | None:
    return Cursor.parse(last_event_id) if last_event_id else None


@router.get(
    "/sessions/{session_id:segment}/stream",
    response_class=EventSourceResponse,
    responses=PROBLEM_RESPONSES,
)
async def stream(
    state: State,
    reader: Annotated[Reader, Depends(ready_reader)],
    session_id: PathId,
    resume: Annotated[Cursor | None, Depends(resumed_from)],
) -> AsyncIterator[ServerSentEvent]:
    """A call as it happens, as server-sent events until the client leaves: `turn` (a turn
    as in the session's `turns`, again whenever it changes), `chunk` (an entry of its chunk
    index, with its `track`), `end` (its completeness, once it ended, and again if that
    changes); `: ping` every 15 s. A session not in the store yet is waited for."""
    feed = state.feed if state.projecting else None
    async for event in follow(reader, feed, session_id, resume, state.closing):
        yield event


@router.get(
    "/sessions/{session_id:segment}", response_model=SessionAnswer, responses=PROBLEM_RESPONSES
)
def session(state: State, session_id: PathId) -> Response:
    """The session's summary, every turn in speaking order, and its chunk index per track."""
    detail = session_detail(state.ready_reader(), session_id)
    return respond(SessionAnswer, state.freshness(), detail)
