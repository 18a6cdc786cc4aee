"""Bearer tokens: with ``TSTORE_API_TOKEN`` set, every ``/v1`` route needs it.

Without a token the service only listens on loopback (``tstore serve`` refuses anything
else), so only this machine can reach it; the admin routes, which change the store, also
refuse a caller that is not on loopback (behind a proxy, say) unless a token is set.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.state import StoreState

_bearer = HTTPBearer(auto_error=False, description="TSTORE_API_TOKEN, when the store sets one")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def state_of(request: Request) -> StoreState:
    """Async, as every dependency that neither blocks nor waits: FastAPI runs a plain ``def``
    dependency on a worker thread, and each such hop cost a request ~1 ms at 4 concurrent
    callers, in waits for the GIL."""
    return _state(request)


def _state(request: Request) -> StoreState:
    state: StoreState = request.app.state.store
    return state


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def bearer(request: Request, credentials: Credentials) -> None:
    _check_token(request, credentials)


def _check_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    token = _state(request).token
    if token is None:
        return
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "a valid bearer token is required (TSTORE_API_TOKEN)")


async def admin(request: Request, credentials: Credentials) -> None:
    _check_token(request, credentials)
    client = request.client.host if request.client else None
    if _state(request).token is None and not is_loopback(client):
        raise HTTPException(
            403, "changing the store from off this machine needs TSTORE_API_TOKEN to be set"
        )
