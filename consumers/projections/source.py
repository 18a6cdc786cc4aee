"""Where in the log an event was read: kept on every row so any row can be traced back."""

from __future__ import annotations

from typing import NamedTuple


class SourcePosition(NamedTuple):
    topic: str
    partition: int
    offset: int
