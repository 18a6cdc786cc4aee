"""``/v1/analytics``: distributions across sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict

from queries.analytics import latency_figures, turn_figures
from service.answers import LatencyFiguresAnswer, TurnFiguresAnswer, respond
from service.auth import bearer, state_of
from service.problems import PROBLEM_RESPONSES
from service.state import StoreState

router = APIRouter(prefix="/v1/analytics", tags=["analytics"], dependencies=[Depends(bearer)])


class RangeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    since: AwareDatetime
    until: AwareDatetime
    bot_id: str | None = None


@router.get("/turns", response_model=TurnFiguresAnswer, responses=PROBLEM_RESPONSES)
def turns(
    state: Annotated[StoreState, Depends(state_of)], query: Annotated[RangeQuery, Query()]
) -> Response:
    """Per role, over turns that started in ``[since, until)``: counts, and p50/p90/p95/p99
    of turn durations."""
    figures = turn_figures(state.ready_reader(), **query.model_dump())
    return respond(TurnFiguresAnswer, state.freshness(), figures)


@router.get("/latency", response_model=LatencyFiguresAnswer, responses=PROBLEM_RESPONSES)
def latency(
    state: Annotated[StoreState, Depends(state_of)], query: Annotated[RangeQuery, Query()]
) -> Response:
    """p50/p90/p95/p99 of the response latencies of assistant turns that started in
    ``[since, until)``: start minus the stop of the user turn before, barge-ins excluded."""
    figures = latency_figures(state.ready_reader(), **query.model_dump())
    return respond(LatencyFiguresAnswer, state.freshness(), figures)
