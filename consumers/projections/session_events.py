"""The ledger of a session's events: one row per (session, seq), for completeness checks.

Producers number every event of a session from 0 without holes, so a session whose ledger has
fewer rows than its highest seq + 1 is missing events, whichever table they would have fed.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import polars as pl

from consumers.projections.source import SourcePosition, columns_of


class SessionEventRow(NamedTuple):
    session_id: str
    seq: int
    event_id: UUID
    event_type: str
    bot_id: str
    occurred_at: datetime
    source: SourcePosition


COLUMNS = columns_of(SessionEventRow)


def from_any(events: pl.DataFrame, event_type: str) -> pl.DataFrame:
    return events.with_columns(event_type=pl.lit(event_type)).select(COLUMNS)
