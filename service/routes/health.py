"""Liveness, readiness and Prometheus metrics: open to any caller, as probes and scrapers
expect."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.answers import Health
from service.auth import state_of
from service.freshness import freshness_registry
from service.parameters import KNOWN_PARAMETERS
from service.problems import PROBLEM_RESPONSES, problem_responses
from service.state import StoreState

router = APIRouter(
    tags=["operations"], dependencies=[KNOWN_PARAMETERS], responses=problem_responses(422)
)
State = Annotated[StoreState, Depends(state_of)]


async def _answers_queries(request: Request) -> bool:
    """Whether ``create_app`` gave this process the query API."""
    answers: bool = request.app.state.queries
    return answers


Queries = Annotated[bool, Depends(_answers_queries)]


@router.get("/healthz", response_model=Health)
def healthz(queries: Queries) -> Health:
    """The process answers; ``queries`` says whether it answers queries too, so that a client
    can tell ``tstore serve`` from ``tstore project`` before it asks."""
    return Health(status="ok", queries=queries)


@router.get("/readyz", response_model=Health, responses={503: PROBLEM_RESPONSES[503]})
def readyz(state: State, queries: Queries) -> Health:
    """The store is open and migrated: queries can be answered. They still are while this
    process's projectors do not run or cannot reach Kafka, or, in a process that does not
    project, while Kafka does not answer its measure of the lag (a probe that took the
    service away then would take the past calls with it); ``detail`` says so, and every
    answer's ``lag_ms`` how far behind the store is (null when it cannot be told)."""
    state.ready_store()
    return Health(status="ready", queries=queries, detail=_falling_behind(state) or "")


def _falling_behind(state: StoreState) -> str | None:
    if not state.projecting:
        failing = state.probe.failing_s if state.probe is not None else None
        if failing is None:
            return None
        return f"the store's lag cannot be told: Kafka has not answered for {failing:.0f} s"
    behind = "the store falls behind meanwhile"
    if (stopped := state.metrics.stopped_s) is not None:
        return (
            f"the projectors have not run for {stopped:.0f} s (starting, or stopped by a "
            f"failure and retrying: see the log); {behind}"
        )
    if (unheard := state.metrics.unheard_s) is not None:
        return f"Kafka has not answered the projectors for {unheard:.0f} s; {behind}"
    if (waiting := state.metrics.unfetched_s) is not None:
        return (
            f"the projectors have not fetched from Kafka for {waiting:.0f} s: a write to the "
            f"store or a commit to Kafka waits; {behind}"
        )
    return None


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(state: State) -> Response:
    """The projector's metrics (events, dead letters, batch sizes, insert latency, lag), the
    store's lag and each bot's newest turn."""
    body = generate_latest(state.metrics.registry) + generate_latest(freshness_registry(state))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
