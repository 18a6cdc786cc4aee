"""A session's turns as a framework reports them, turned into producer calls.

Frameworks announce turn starts and stops through callbacks that carry no turn identity; this
numbers the turns, remembers the open one per role, and lets a stop without a start still make
a complete turn. ``guarded`` wraps those callbacks: whatever goes wrong in them is logged and
counted, and never raised into the framework, because the bot must not fail because of us.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, cast

import structlog

from producers.producer import TranscriptProducer
from schemas import Role, WordTiming

log = structlog.get_logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def guarded(handler: Callable[P, R]) -> Callable[P, R | None]:
    """Log and swallow any exception of a framework callback, sync or async."""
    name = getattr(handler, "__qualname__", repr(handler))
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def guarded_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                return await cast(Callable[P, Awaitable[Any]], handler)(*args, **kwargs)
            except Exception:
                log.exception("transcript_callback_failed", callback=name)
                return None

        return cast(Callable[P, R | None], guarded_async)

    @functools.wraps(handler)
    def guarded_sync(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return handler(*args, **kwargs)
        except Exception:
            log.exception("transcript_callback_failed", callback=name)
            return None

    return guarded_sync


@dataclass(frozen=True)
class OpenTurn:
    turn_id: str
    started_at: datetime


class SessionTurns:
    def __init__(
        self, producer: TranscriptProducer, session_id: str, *, user_id: str | None = None
    ) -> None:
        self.producer = producer
        self.session_id = session_id
        self.user_id = user_id
        self._open: dict[Role, OpenTurn] = {}
        self._numbers = itertools.count()

    def open_turn(self, role: Role) -> OpenTurn | None:
        return self._open.get(role)

    def started(
        self, role: Role, *, at: datetime | None = None, strategy: str | None = None
    ) -> OpenTurn:
        turn = OpenTurn(f"{role}-{next(self._numbers)}", at or datetime.now(UTC))
        self._open[role] = turn
        self.producer.turn_started(
            self.session_id,
            turn.turn_id,
            role,
            started_at=turn.started_at,
            detection_strategy=strategy,
        )
        return turn

    def stopped(
        self,
        role: Role,
        *,
        text: str,
        started_at: datetime | None = None,
        stopped_at: datetime | None = None,
        interrupted: bool = False,
        timed_out: bool = False,
        language: str | None = None,
        words: tuple[WordTiming, ...] | None = None,
    ) -> None:
        """Close the open turn of ``role``; without one, the stop makes a turn of its own."""
        stopped_at = stopped_at or datetime.now(UTC)
        turn = self._open.pop(role, None)
        turn_id = turn.turn_id if turn else f"{role}-{next(self._numbers)}"
        self.producer.turn_stopped(
            self.session_id,
            turn_id,
            role,
            text=text,
            started_at=started_at or (turn.started_at if turn else stopped_at),
            stopped_at=stopped_at,
            interrupted=interrupted,
            timed_out=timed_out,
            user_id=self.user_id if role == "user" else None,
            language=language,
            words=words,
        )
