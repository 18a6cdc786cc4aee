"""``/v1/incomplete``: sessions with holes, and what is missing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from queries.incomplete import incomplete_sessions
from queries.paging import MAX_PAGE
from service.answers import IncompleteAnswer, respond
from service.auth import bearer, state_of
from service.parameters import KNOWN_PARAMETERS
from service.problems import PROBLEM_RESPONSES
from service.state import StoreState

router = APIRouter(
    prefix="/v1", tags=["sessions"], dependencies=[Depends(bearer), KNOWN_PARAMETERS]
)


@router.get("/incomplete", response_model=IncompleteAnswer, responses=PROBLEM_RESPONSES)
def incomplete(
    state: Annotated[StoreState, Depends(state_of)],
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Response:
    """Sessions missing events (holes in ``seq``), with turns that never stopped, ended with
    chunks other than their end declared (missing or extra chunks, sample gaps, overlaps or
    totals), or abandoned (no end, and silent for longer than ``TSTORE_ABANDONED_AFTER_S``),
    in session-id order; each with its completeness. A page stops after about a second of
    searching: it may hold fewer than ``limit``, or none, with a ``next_cursor`` to go on."""
    page = incomplete_sessions(state.ready_reader(), cursor=cursor, limit=limit)
    return respond(IncompleteAnswer, state.freshness(), page)
