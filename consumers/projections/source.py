"""Where in the log an event was read: kept on every row so any row can be traced back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int
