"""Query parameters a route does not take, or given more than once, are refused (422 naming
each, and every other malformed parameter of the request in the same answer), on every route.

FastAPI ignores the first, so a misspelt filter (``bot=`` for ``bot_id=``) would be answered as
if it were not there, unfiltered, and the caller could not tell; of the second it takes the
last, so ``bot_id=a&bot_id=b`` answered for b alone, as if the caller meant either (no
parameter of this API takes a list). Every router lists
``KNOWN_PARAMETERS`` after its guard, so a caller without the token learns that first; what a
route takes is read from its own declaration (query models included), so a route never lists
its parameters twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel


async def known_parameters(request: Request) -> None:
    route: APIRoute = request.scope["route"]
    taken = _query_names(route.dependant)  # 1-2 µs: not worth a cache
    given = Counter(name for name, _ in request.query_params.multi_items())
    unknown = sorted(set(given) - taken)
    repeated = sorted(name for name, times in given.items() if times > 1)
    if unknown or repeated:
        reason = f"not a parameter of this route, which takes {', '.join(sorted(taken)) or 'none'}"
        raise RequestValidationError(
            [{"type": "extra_forbidden", "loc": ("query", name), "msg": reason} for name in unknown]
            + [
                {"type": "repeated", "loc": ("query", name), "msg": "given more than once"}
                for name in repeated
                if name not in unknown
            ]
            + _invalid_parameters(route.dependant, request)
        )


def _invalid_parameters(dependant: Dependant, request: Request) -> list[dict[str, Any]]:
    """What FastAPI would find wrong with the route's other parameters (path, query, header,
    cookie), had this check not stopped the request first: one answer names every parameter
    at fault. Checks a dependency makes in its own code (``since`` before ``until``) come
    later, once the parameters are well formed."""
    errors: list[dict[str, Any]] = []
    for given, received in (
        (dependant.path_params, request.path_params),
        (dependant.query_params, request.query_params),
        (dependant.header_params, request.headers),
        (dependant.cookie_params, request.cookies),
    ):
        errors += request_params_to_args(given, received)[1]
    for dependency in dependant.dependencies:
        if dependency.call is not known_parameters:
            errors += _invalid_parameters(dependency, request)
    unique = {(tuple(e["loc"]), e["type"]): e for e in errors}  # a dependency used twice
    return list(unique.values())


KNOWN_PARAMETERS = Depends(known_parameters)


def _query_names(dependant: Dependant) -> set[str]:
    names: set[str] = set()
    for field in dependant.query_params:
        model = field.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):  # a query model
            names |= {f.alias or name for name, f in model.model_fields.items()}
        else:
            names.add(field.alias)
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names
