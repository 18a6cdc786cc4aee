"""How a session's time is spent between its speakers, from its turns' start and stop times:
pure, so the rules can be read and tested alone (``queries.metrics`` computes the same in
the engine, and a test holds the two to each other).

A turn covers ``[start, stop)``; a turn not stopped yet covers nothing. The call runs from the
first turn's start to the last turn's stop (or start, while it is open). Overlap is the time
both speakers were talking, silence the time of the call in which neither was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Speaker = Literal["user", "assistant"]


@dataclass(frozen=True)
class TurnTime:
    role: Speaker
    start_ms: int
    stop_ms: int | None


@dataclass(frozen=True)
class SessionTime:
    call_ms: int
    overlap_ms: int
    silence_ms: int


def covered_ms(spans: Iterable[tuple[int, int]]) -> int:
    """The length of the union of ``[start, stop)`` spans."""
    total, reached = 0, None
    for start, stop in sorted(spans):
        begin = start if reached is None else max(start, reached)
        total += max(0, stop - begin)
        reached = stop if reached is None else max(reached, stop)
    return total


def session_time(turns: Iterable[TurnTime]) -> SessionTime:
    """At least one turn."""
    found = list(turns)
    spans = {
        role: [(t.start_ms, t.stop_ms) for t in found if t.role == role and t.stop_ms is not None]
        for role in ("user", "assistant")
    }
    both = covered_ms(spans["user"] + spans["assistant"])
    call = max(t.start_ms if t.stop_ms is None else t.stop_ms for t in found) - min(
        t.start_ms for t in found
    )
    return SessionTime(
        call_ms=call,
        overlap_ms=covered_ms(spans["user"]) + covered_ms(spans["assistant"]) - both,
        silence_ms=call - both,
    )
