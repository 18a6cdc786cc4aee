"""The rows the live projectors have just written, for whoever in this process follows a
session as it happens (the service's streams of live calls).

The projector hands each batch over once it is written (``publish``); a follower subscribes to
one session and takes what was published for it. Publishing never waits for a follower: each
subscription holds at most ``limit`` batches, and one that falls that far behind (a browser on
a slow link) loses them and is told to read the session again from the tables instead
(``Delivery.resync``). Everything here runs on the event loop the projector runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import structlog

log = structlog.get_logger(__name__)

SessionRows = dict[str, list[dict[str, Any]]]
"""One session's rows of a batch, by projection."""

LIMIT = 64
"""Batches a subscription holds: about 13 s of batches at one each 200 ms."""


@dataclass(frozen=True)
class Delivery:
    batches: list[SessionRows]
    """Published since the last delivery, oldest first."""
    resync: bool
    """Batches were dropped: read the session from the tables."""


@dataclass(eq=False)
class Subscription:
    session_id: str
    limit: int = LIMIT
    _batches: deque[SessionRows] = field(default_factory=deque)
    _dropped: bool = False
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, rows: SessionRows) -> None:
        if len(self._batches) >= self.limit:
            self._batches.clear()
            if not self._dropped:
                log.info("live_follower_behind", session_id=self.session_id, dropped=self.limit)
            self._dropped = True
        else:
            self._batches.append(rows)
        self._arrived.set()

    async def next(self, timeout_s: float) -> Delivery:
        """What arrived, once something did or after ``timeout_s`` (then nothing)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), timeout_s)
        delivery = Delivery(list(self._batches), self._dropped)
        self._batches.clear()
        self._dropped = False
        self._arrived.clear()
        return delivery


class LiveFeed:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._following: dict[str, set[Subscription]] = {}

    @contextlib.contextmanager
    def subscribe(self, session_id: str) -> Iterator[Subscription]:
        subscription = Subscription(session_id, self.limit)
        self._following.setdefault(session_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            followers = self._following[session_id]
            followers.discard(subscription)
            if not followers:
                del self._following[session_id]

    def publish(self, rows: Mapping[str, pl.DataFrame]) -> None:
        """Hand a written batch's rows to the subscriptions of their sessions. Without any,
        this costs nothing; with some, a filter of each frame by their sessions."""
        if not self._following:
            return
        wanted = list(self._following)
        by_session: dict[str, SessionRows] = {}
        for table, frame in rows.items():
            found = frame.filter(pl.col("session_id").is_in(wanted))
            for (session_id, *_), part in found.partition_by("session_id", as_dict=True).items():
                by_session.setdefault(str(session_id), {})[table] = part.to_dicts()
        for session_id, session_rows in by_session.items():
            for subscription in self._following.get(session_id, ()):
                subscription.offer(session_rows)
