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

import polars as pl

from consumers.projections.source import SourcePosition, columns_of
from schemas import Role, WordTiming

_COMPLETE_BIT = 1 << 63
_WORDS = pl.List(pl.Struct({"text": pl.String, "start": pl.Float64, "end": pl.Float64}))
_UTC_MICROS = pl.Datetime("us", "UTC")


class TranscriptRow(NamedTuple):
    session_id: str
    turn_id: str
    bot_id: str
    framework: str
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


COLUMNS = columns_of(TranscriptRow)


def _version(complete: bool) -> pl.Expr:
    seq = pl.col("seq").cast(pl.UInt64)
    return seq + pl.lit(_COMPLETE_BIT, pl.UInt64) if complete else seq


KEY = ["session_id", "turn_id"]


def from_turns(started: pl.DataFrame, stopped: pl.DataFrame) -> pl.DataFrame:
    """A batch's rows. A stop outranks every start of its turn (completeness comes first in the
    version), so a start whose stop is in the same batch is left out: the table shows the same
    from half the rows, as a turn's two events mostly arrive together."""
    still_open = started.join(stopped.select(KEY), on=KEY, how="anti")
    return pl.concat([from_started(still_open), from_stopped(stopped)])


_FRAMEWORK = pl.col("producer").struct.field("framework")


def from_started(started: pl.DataFrame) -> pl.DataFrame:
    """An open turn: what is known when it starts, the rest empty."""
    return started.with_columns(
        framework=_FRAMEWORK,
        stopped_at=pl.lit(None, _UTC_MICROS),
        duration_ms=pl.lit(None, pl.Int64),
        text=pl.lit(""),
        interrupted=pl.lit(False),
        timed_out=pl.lit(False),
        user_id=pl.lit(None, pl.String),
        language=pl.lit(None, pl.String),
        words=pl.lit([], _WORDS),
        complete=pl.lit(False),
        version=_version(complete=False),
    ).select(COLUMNS)


def from_stopped(stopped: pl.DataFrame) -> pl.DataFrame:
    """A complete turn, with its transcript."""
    return stopped.with_columns(
        framework=_FRAMEWORK,
        duration_ms=(pl.col("stopped_at") - pl.col("started_at")).dt.total_milliseconds(),
        words=pl.col("words").fill_null(pl.lit([], _WORDS)),
        complete=pl.lit(True),
        version=_version(complete=True),
    ).select(COLUMNS)


def latest(rows: pl.DataFrame) -> pl.DataFrame:
    """What the table shows after merging: the highest version per turn, in key order.

    This is the in-memory statement of the ReplacingMergeTree rule, used to reason about and
    test the projection without an engine.
    """
    return rows.sort("version").unique(subset=KEY, keep="last").sort(KEY)
