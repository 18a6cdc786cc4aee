"""Errors as RFC 9457 problem details (``application/problem+json``), one handler each.

Every expected failure names what was wrong: the parameter that could not be used (400, 422),
the session or generation that is not there (404), the store that is not ready or the Kafka
it cannot reach (503). Anything unexpected is logged with its traceback and answered with a
500 that carries no internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from audio.stores import ChunkError
from consumers.admin import KafkaUnreachableError, UnknownGenerationError
from consumers.storage.generations import GenerationError
from queries import BadQueryError, NotFoundError

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class InvalidParameter(BaseModel):
    name: str = Field(description="The parameter, e.g. `limit` or `body.until`.")
    reason: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    invalid_params: list[InvalidParameter] = Field(default_factory=list)


class StoreNotReadyError(RuntimeError):
    """The store cannot answer yet (starting, migrating) or any more (its engine failed)."""


_TITLES = {
    400: "A parameter cannot be used",
    401: "No or wrong bearer token",
    403: "Not allowed from off this machine without a token",
    404: "Not in the store",
    409: "The store refused the change",
    422: "A parameter is malformed",
    502: "The chunk store failed",
    503: "The store is not ready",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these statuses: each a ``Problem`` (``problem_media_type``
    moves it to ``application/problem+json`` in the document)."""
    return {status: {"model": Problem, "description": _TITLES[status]} for status in statuses}


PROBLEM_RESPONSES = problem_responses(400, 401, 404, 422, 503)


def problem_media_type(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with every ``Problem`` answer under the media type it is sent
    with: FastAPI files a response model under the route's own media type (``application/json``,
    ``text/event-stream`` for the stream), but a problem is always ``application/problem+json``."""
    reference = "#/components/schemas/Problem"
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                for media_type, body in list(content.items()):
                    if body.get("schema", {}).get("$ref") == reference:
                        content[PROBLEM_JSON] = content.pop(media_type)
    return document


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The problem answer, with ``headers`` (a 401 says ``WWW-Authenticate: Bearer`` unless
    they say otherwise)."""
    body = Problem(status=status, title=title, detail=detail, **extra)
    sent = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    sent.update(headers or {})
    return JSONResponse(
        body.model_dump(), status_code=status, media_type=PROBLEM_JSON, headers=sent
    )


def _name(location: tuple[Any, ...]) -> str:
    kept = [str(part) for part in location if part not in ("query", "path", "header")]
    return ".".join(kept) or "request"


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    params = [
        InvalidParameter(name=_name(tuple(e.get("loc", ()))), reason=str(e.get("msg", "invalid")))
        for e in exc.errors()
    ]
    detail = "; ".join(f"{p.name}: {p.reason}" for p in params)
    return problem(422, "A parameter is malformed", detail, invalid_params=params)


async def _bad_query(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadQueryError)
    param = InvalidParameter(name=exc.parameter, reason=exc.detail)
    return problem(400, "A parameter cannot be used", str(exc), invalid_params=[param])


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return problem(404, "Not in the store", str(exc))


async def _not_ready(_: Request, exc: Exception) -> JSONResponse:
    return problem(503, "The store is not ready", str(exc))


async def _kafka_unreachable(_: Request, exc: Exception) -> JSONResponse:
    return problem(503, "Kafka is unreachable", str(exc))


async def _chunk_store(_: Request, exc: Exception) -> JSONResponse:
    log.warning("chunk_unreadable", error=str(exc))
    return problem(502, "The chunk store failed", str(exc))


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return problem(409, "The store refused the change", str(exc))


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)  # its headers kept: Allow on a 405 (RFC 9110)
    return problem(exc.status_code, str(exc.detail), str(exc.detail), headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("request_failed", path=request.url.path, exc_info=exc)
    return problem(500, "Internal error", "the store failed to answer; see its log")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(BadQueryError, _bad_query)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(UnknownGenerationError, _not_found)
    app.add_exception_handler(StoreNotReadyError, _not_ready)
    app.add_exception_handler(KafkaUnreachableError, _kafka_unreachable)
    app.add_exception_handler(GenerationError, _conflict)
    app.add_exception_handler(ChunkError, _chunk_store)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
