"""The ledger of a session's events: one row per (session, seq), for completeness checks.

Producers number every event of a session from 0 without holes, so a session whose ledger has
fewer rows than its highest seq + 1 is missing events, whichever table they would have fed.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from consumers.projections.source import SourcePosition
from schemas.models import Event


class SessionEventRow(NamedTuple):
    session_id: str
    seq: int
    event_id: UUID
    event_type: str
    bot_id: str
    occurred_at: datetime
    source: SourcePosition


def session_event_row(event: Event, source: SourcePosition) -> SessionEventRow:
    return SessionEventRow(
        session_id=event.session_id,
        seq=event.seq,
        event_id=event.event_id,
        event_type=type(event).__name__,
        bot_id=event.bot_id,
        occurred_at=event.occurred_at,
        source=source,
    )
