"""``/v1/analytics``: the named metrics per bucket and group, and distributions across sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict

from analytics.definitions import Bucket, GroupBy
from queries.analytics import latency_figures, turn_figures
from queries.metrics import metrics
from queries.models import AskedName, AskedTime
from service.answers import LatencyFiguresAnswer, MetricsAnswer, TurnFiguresAnswer, respond
from service.auth import bearer, state_of
from service.parameters import KNOWN_PARAMETERS
from service.problems import PROBLEM_RESPONSES
from service.state import StoreState

router = APIRouter(
    prefix="/v1/analytics", tags=["analytics"], dependencies=[Depends(bearer), KNOWN_PARAMETERS]
)
State = Annotated[StoreState, Depends(state_of)]


class RangeQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    since: AskedTime
    until: AskedTime
    bot_id: AskedName = None


class MetricsQuery(RangeQuery):
    bucket: Bucket = "hour"
    group_by: GroupBy | None = None


@router.get("", response_model=MetricsAnswer, responses=PROBLEM_RESPONSES)
def all_metrics(state: State, query: Annotated[MetricsQuery, Query()]) -> Response:
    """Every metric of `definitions` per bucket (`minute`, `hour` or `day` of UTC) of
    ``[since, until)`` and per group (`bot`, `role`, `language` or `framework`), from the live
    tables: each turn once, in its latest version. A turn counts in the bucket of its start, a
    session in that of its first turn, with all its turns, when that turn started in the range
    (in that of its first event, without turns); buckets with no turn and no session are left
    out."""
    found = metrics(state.ready_reader(), **query.model_dump())
    return respond(MetricsAnswer, state.freshness(), found)


@router.get("/turns", response_model=TurnFiguresAnswer, responses=PROBLEM_RESPONSES)
def turns(state: State, query: Annotated[RangeQuery, Query()]) -> Response:
    """Per role, over turns that started in ``[since, until)``: counts, and p50/p90/p95/p99
    of turn durations."""
    figures = turn_figures(state.ready_reader(), **query.model_dump())
    return respond(TurnFiguresAnswer, state.freshness(), figures)


@router.get("/latency", response_model=LatencyFiguresAnswer, responses=PROBLEM_RESPONSES)
def latency(state: State, query: Annotated[RangeQuery, Query()]) -> Response:
    """p50/p90/p95/p99 of the response latencies of assistant turns that started in
    ``[since, until)``: start minus the stop of the user turn before, wherever that lies,
    barge-ins excluded."""
    figures = latency_figures(state.ready_reader(), **query.model_dump())
    return respond(LatencyFiguresAnswer, state.freshness(), figures)
