"""Ids in paths, exactly as their callers sent them.

A session or turn id may hold ``/`` (a LiveKit room name, a caller's own key), sent as
``%2F``. The ASGI server decodes the path before routing, so ``/v1/sessions/a%2Fb/audio`` and
``/v1/sessions/a/b/audio`` would be the same path: no route could tell where an id ends, and a
session whose id ends in ``/audio`` would be hidden behind that route. ``SentPath`` routes on
the path as sent instead, each segment re-encoded whole, and the ``segment`` convertor decodes
the segment an id was sent in, so an id is always exactly one segment.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import Path
from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_ID = 256


class SegmentConvertor(Convertor[str]):
    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return unquote(value)

    def to_string(self, value: str) -> str:
        return quote(value, safe="")


register_url_convertor("segment", SegmentConvertor())

PathId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID, description="A `/` in it is sent as `%2F`.")
]
"""A session's or a turn's id in a route's path, as its ``segment``."""


class SentPath:
    """Has the routes match the path as sent, every segment encoded whole (a ``/`` inside a
    segment stays ``%2F``); routes take their ids with the ``segment`` convertor."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw:
            scope = dict(scope, path=routed(raw.decode("latin-1")))
        await self.app(scope, receive, send)


def routed(raw_path: str) -> str:
    """``raw_path`` with each segment decoded, then encoded whole: one spelling per path."""
    return "/".join(quote(unquote(segment), safe="") for segment in raw_path.split("/"))
