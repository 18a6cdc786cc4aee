"""``/v1/incomplete``: sessions with holes, and what is missing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from queries.incomplete import incomplete_sessions
from queries.models import AskedName
from queries.paging import MAX_PAGE
from service.answers import IncompleteAnswer, respond
from service.auth import bearer, state_of
from service.parameters import KNOWN_PARAMETERS
from service.problems import PROBLEM_RESPONSES
from service.state import StoreState

router = APIRouter(
    prefix="/v1", tags=["sessions"], dependencies=[Depends(bearer), KNOWN_PARAMETERS]
)


class IncompleteQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    bot_id: AskedName = Field(None, description="Sessions whose first event came from this bot.")
    cursor: str | None = Field(None, description="From the previous page's `next_cursor`.")
    limit: int = Field(
        100, ge=1, le=MAX_PAGE, description="Sessions per page, at most (a page may hold fewer)."
    )


@router.get("/incomplete", response_model=IncompleteAnswer, responses=PROBLEM_RESPONSES)
def incomplete(
    state: Annotated[StoreState, Depends(state_of)],
    query: Annotated[IncompleteQuery, Query()],
) -> Response:
    """Sessions missing events (holes in ``seq``), with turns that never stopped, ended with
    chunks other than their end declared (missing or extra chunks, sample gaps, overlaps or
    totals), or abandoned (no end, and silent for longer than ``TSTORE_ABANDONED_AFTER_S``),
    in session-id order; each with its completeness and the bot of its first event (which
    ``bot_id`` filters by). A page stops after about a second of
    searching: it may hold fewer than ``limit``, or none, with a ``next_cursor`` to go on."""
    page = incomplete_sessions(state.ready_reader(), **query.model_dump())
    return respond(IncompleteAnswer, state.freshness(), page)
