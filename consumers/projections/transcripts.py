"""The transcript projection: one row per turn, whatever order or how often its events arrive.

A turn's TurnStarted and TurnStopped each become a full row for the same (session, turn) key;
the table keeps the row with the highest version. The version puts completeness first and the
producer's seq second, so a stop beats a start even if it is read first, a later correction
beats an earlier stop, and a duplicate has the same version and the same content as its twin
(only its source position differs).
Nothing here knows about Kafka or ClickHouse.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from consumers.projections.source import SourcePosition
from schemas import Role, TurnStarted, TurnStopped, WordTiming

_COMPLETE_BIT = 1 << 63


class TranscriptRow(NamedTuple):
    session_id: str
    turn_id: str
    bot_id: str
    role: Role
    started_at: datetime
    stopped_at: datetime | None
    duration_ms: int | None
    text: str
    interrupted: bool
    timed_out: bool
    user_id: str | None
    language: str | None
    words: tuple[WordTiming, ...]
    complete: bool
    seq: int
    version: int
    source: SourcePosition


def row_version(*, complete: bool, seq: int) -> int:
    return (_COMPLETE_BIT if complete else 0) | seq


def transcript_row(event: TurnStarted | TurnStopped, source: SourcePosition) -> TranscriptRow:
    if isinstance(event, TurnStarted):
        return TranscriptRow(
            session_id=event.session_id,
            turn_id=event.turn_id,
            bot_id=event.bot_id,
            role=event.role,
            started_at=event.started_at,
            stopped_at=None,
            duration_ms=None,
            text="",
            interrupted=False,
            timed_out=False,
            user_id=None,
            language=None,
            words=(),
            complete=False,
            seq=event.seq,
            version=row_version(complete=False, seq=event.seq),
            source=source,
        )
    return TranscriptRow(
        session_id=event.session_id,
        turn_id=event.turn_id,
        bot_id=event.bot_id,
        role=event.role,
        started_at=event.started_at,
        stopped_at=event.stopped_at,
        duration_ms=event.duration_ms,
        text=event.text,
        interrupted=event.interrupted,
        timed_out=event.timed_out,
        user_id=event.user_id,
        language=event.language,
        words=event.words or (),
        complete=True,
        seq=event.seq,
        version=row_version(complete=True, seq=event.seq),
        source=source,
    )


def latest_rows(rows: list[TranscriptRow]) -> dict[tuple[str, str], TranscriptRow]:
    """What the table shows after merging: the highest version per turn.

    This is the in-memory statement of the ReplacingMergeTree rule, used to reason about and
    test the projection without an engine.
    """
    best: dict[tuple[str, str], TranscriptRow] = {}
    for row in rows:
        key = (row.session_id, row.turn_id)
        if key not in best or row.version > best[key].version:
            best[key] = row
    return best
