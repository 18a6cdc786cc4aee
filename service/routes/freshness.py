"""``/v1/freshness``: how far behind the store is, and each bot's newest turn."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from queries.freshness import BotFreshness, bot_freshness
from service.answers import Freshness, respond
from service.auth import bearer, state_of
from service.parameters import KNOWN_PARAMETERS
from service.problems import problem_responses
from service.state import StoreState

router = APIRouter(
    prefix="/v1", tags=["operations"], dependencies=[Depends(bearer), KNOWN_PARAMETERS]
)
State = Annotated[StoreState, Depends(state_of)]


class FreshnessAnswer(Freshness):
    bots: list[BotFreshness] = Field(description="Every bot with turns, by id.")


@router.get(
    "/freshness", response_model=FreshnessAnswer, responses=problem_responses(401, 404, 422, 503)
)
def freshness(state: State) -> Response:
    """The lag, and per bot its newest turn and how old it is: a bot whose newest turn is old
    while the lag is small has been quiet; a large lag means the store is behind."""
    fresh = state.freshness()
    return respond(FreshnessAnswer, fresh, bots=bot_freshness(state.ready_reader(), fresh.as_of))
