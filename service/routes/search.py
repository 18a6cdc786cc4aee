"""``/v1/search``: full-text over transcripts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from queries.models import AskedName, AskedTime
from queries.paging import MAX_PAGE
from queries.search import MAX_QUERY_CHARS, search
from schemas import Role
from service.answers import SearchAnswer, respond
from service.auth import bearer, state_of
from service.parameters import KNOWN_PARAMETERS
from service.problems import PROBLEM_RESPONSES
from service.state import StoreState

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[Depends(bearer), KNOWN_PARAMETERS])


class SearchQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    q: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description='Words (all must occur, any case) and "quoted phrases".',
    )
    bot_id: AskedName = None
    role: Role | None = None
    since: AskedTime | None = Field(None, description="Turns starting at or after this.")
    until: AskedTime | None = Field(None, description="Turns starting before this.")
    cursor: str | None = None
    limit: int = Field(20, ge=1, le=MAX_PAGE)


@router.get("/search", response_model=SearchAnswer, responses=PROBLEM_RESPONSES)
def search_turns(
    state: Annotated[StoreState, Depends(state_of)], query: Annotated[SearchQuery, Query()]
) -> Response:
    """Turns whose text holds every word and phrase, newest first, matches marked."""
    page = search(state.ready_reader(), **query.model_dump())
    return respond(SearchAnswer, state.freshness(), page)
