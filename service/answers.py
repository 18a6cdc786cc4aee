"""The API's answers: the query library's models, each stamped with how fresh the store is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from fastapi import Response
from pydantic import AwareDatetime, BaseModel, Field

from consumers.storage.generations import Generation, GenerationSize
from queries import IncompletePage, SearchPage, SessionDetail, SessionPage, Turn
from queries.models import LatencyFigures, Metrics, TurnFigures

A = TypeVar("A", bound=BaseModel)


def respond(
    answer: type[A], fresh: Freshness, found: BaseModel | None = None, **fields: Any
) -> Response:
    """``found`` and ``fields`` as ``answer``, stamped with ``fresh``, serialized once by
    pydantic. A route that returns a model has FastAPI dump it to Python objects, validate
    them against the route's response model and encode them again: half a light request's
    time. The route still declares its ``response_model``, which documents the answer."""
    body = answer(**dict(fresh), **(dict(found) if found is not None else {}), **fields)
    return Response(body.model_dump_json(), media_type="application/json")


class Freshness(BaseModel):
    as_of: AwareDatetime = Field(description="When this answer was read from the store.")
    lag_ms: float | None = Field(
        description="Age of the oldest event not yet projected (0: caught up); null when "
        "this process does not project and so cannot tell."
    )


class SessionsAnswer(SessionPage, Freshness):
    pass


class SessionAnswer(SessionDetail, Freshness):
    pass


class TurnsAnswer(Freshness):
    session_id: str
    turns: list[Turn] = Field(description="In speaking order.")


class SearchAnswer(SearchPage, Freshness):
    pass


class IncompleteAnswer(IncompletePage, Freshness):
    pass


class TurnFiguresAnswer(TurnFigures, Freshness):
    pass


class LatencyFiguresAnswer(LatencyFigures, Freshness):
    pass


class MetricsAnswer(Metrics, Freshness):
    pass


class Health(BaseModel):
    status: str
    queries: bool = Field(
        True,
        description="Whether this process answers the query API: false for `tstore project`, "
        "which answers only health, metrics and /v1/admin (a client asking it for sessions "
        "would be told 404, as if they were missing).",
    )
    detail: str = Field(
        "",
        description="Empty when all is well; else why the store may be behind, or its lag "
        "unknown, as this process tells it (the answer is still ready: queries are answered).",
    )


class GenerationInfo(BaseModel):
    generation: int
    state: str
    shown_for: list[str] = Field(description="Projections whose readers see this generation.")
    rows: dict[str, int]
    bytes_on_disk: int
    created_at: datetime
    cut_over_at: datetime | None
    until: datetime | None

    @classmethod
    def of(
        cls, generation: Generation, shown_for: Sequence[str], size: GenerationSize
    ) -> GenerationInfo:
        return cls(
            generation=generation.number,
            state=generation.state,
            shown_for=list(shown_for),
            rows=size.rows,
            bytes_on_disk=size.bytes_on_disk,
            created_at=generation.created_at,
            cut_over_at=generation.cut_over_at,
            until=generation.until,
        )


class GenerationAnswer(GenerationInfo, Freshness):
    pass


class GenerationsAnswer(Freshness):
    generations: list[GenerationInfo] = Field(description="By number.")
