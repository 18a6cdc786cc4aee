"""``/v1/admin``: rebuilds run inside this process (in embedded mode the only one that may
open the store), and the generations they make. These routes change the store: see
``service.auth.admin``."""

from __future__ import annotations

from typing import Annotated, Any, Self

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from consumers.admin import KAFKA_EPOCH, drop_known, excluded_by_discard
from consumers.storage.generations import GenerationSize
from queries.models import AskedTime
from service.answers import (
    Freshness,
    GenerationAnswer,
    GenerationInfo,
    GenerationsAnswer,
    respond,
)
from service.auth import admin, state_of
from service.parameters import KNOWN_PARAMETERS
from service.problems import problem_responses
from service.state import StoreState

RESPONSES = problem_responses(400, 401, 403, 404, 409, 422, 503)  # 400: a body not JSON
router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(admin), KNOWN_PARAMETERS],
    responses=RESPONSES,
)
State = Annotated[StoreState, Depends(state_of)]


class RebuildRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    only: list[str] | None = Field(None, description="Rebuild only these projections.")
    until: AskedTime | None = Field(
        None,
        gt=KAFKA_EPOCH,
        description="Replay only events written before this; kept frozen, not shown.",
    )
    resume: bool = False
    discard: bool = False
    dry_run: bool = False
    allow_loss: bool = Field(
        False,
        description="Cut over even when the new generation lacks sessions readers are shown "
        "(the topics no longer hold their events).",
    )

    @model_validator(mode="after")
    def _discard_alone(self) -> Self:
        if excluded := excluded_by_discard(self.model_dump()):
            raise ValueError(f"discard excludes {', '.join(excluded)}: it takes no other option")
        return self


class RebuildStatus(Freshness):
    state: str = Field(description="idle, running, cancelled, failed or done")
    plan: dict[str, Any] | None = None
    positions: list[tuple[str, int, int]] = Field(
        default_factory=list, description="[topic, partition, next offset] read so far."
    )
    summary: dict[str, Any] | None = None
    error: str | None = None


class RebuildAnswer(Freshness):
    plan: dict[str, Any] | None = None
    discarded: int | None = None


@router.post("/rebuild", response_model=RebuildAnswer)
async def start_rebuild(state: State, body: RebuildRequest) -> Response:
    """Start a rebuild here (or plan it, with ``dry_run``; drop an unfinished one, with
    ``discard``). Refused (409) while another runs; 503 when Kafka cannot be reached."""
    request = body.model_dump() | {"until": body.until.isoformat() if body.until else None}
    started = await state.ready_rebuilds().start(request)
    return respond(RebuildAnswer, state.freshness(), **started)


@router.get("/rebuild", response_model=RebuildStatus)
def rebuild_status(state: State) -> Response:
    """The running or last rebuild: plan, positions, and its summary or error."""
    return respond(RebuildStatus, state.freshness(), **state.ready_rebuilds().status())


@router.delete("/rebuild", response_model=RebuildStatus)
async def cancel_rebuild(state: State) -> Response:
    """Stop the running rebuild between two batches: its generation stays unfinished, to
    resume or discard. Asked once the replay is over, the rebuild goes on to its end (the
    answer says it runs still, or how it ended). Refused (409) when none runs."""
    ended = await state.ready_rebuilds().cancel()
    return respond(RebuildStatus, state.freshness(), **ended)


@router.get("/generations", response_model=GenerationsAnswer)
def generations(state: State) -> Response:
    """Every generation: state, which projections readers see it for, rows and size."""
    overview = state.ready_store().generations.overview()
    found = [GenerationInfo.of(*row) for row in overview]
    return respond(GenerationsAnswer, state.freshness(), generations=found)


@router.delete("/generations/{number}", response_model=GenerationAnswer)
def drop_generation(state: State, number: Annotated[int, Path(ge=1, le=2**32 - 1)]) -> Response:
    """Delete a generation's rows; refused (409) for one that readers are shown or that is
    discarded already, not found (404) for one there is not."""
    dropped = drop_known(state.ready_store().generations, number)
    return respond(
        GenerationAnswer, state.freshness(), GenerationInfo.of(dropped, (), GenerationSize({}, 0))
    )
