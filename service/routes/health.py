"""Liveness, readiness and Prometheus metrics: open to any caller, as probes and scrapers
expect."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
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


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: PROBLEM_RESPONSES[503]})
def readyz(state: State) -> Health:
    """The store is open and migrated: queries can be answered. They still are while the
    projectors cannot reach Kafka (a probe that took the service away then would take the
    past calls with it); ``detail`` says so, and every answer's ``lag_ms`` how far behind."""
    state.ready_store()
    unheard = state.metrics.unheard_s if state.projecting else None
    if unheard is None:
        return Health(status="ready")
    return Health(
        status="ready",
        detail=f"Kafka has not answered the projectors for {unheard:.0f} s: answers miss "
        "what was produced since (see the log)",
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(state: State) -> Response:
    """The projector's metrics (events, dead letters, batch sizes, insert latency, lag), the
    store's lag and each bot's newest turn."""
    body = generate_latest(state.metrics.registry) + generate_latest(freshness_registry(state))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
