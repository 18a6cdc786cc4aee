"""The ledger of a session's events: one row per (session, seq), for completeness checks.

Producers number every event of a session from 0 without holes, so a session whose ledger has
fewer rows than its highest seq + 1 is missing events, whichever table they would have fed.
A ``SessionEnded`` row also keeps what the producer declared it had sent (``declared_*``): the
session's event count, and per track its chunks and their samples; other rows leave them empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import polars as pl

from consumers.projections.source import SourcePosition, columns_of
from schemas import SessionEnded, Track
from schemas.models import Event

TRACKS: tuple[Track, ...] = ("user", "assistant", "mixed")


class DeclaredTrack(NamedTuple):
    track: Track
    chunks: int
    samples: int


class SessionEventRow(NamedTuple):
    session_id: str
    seq: int
    event_id: UUID
    event_type: str
    bot_id: str
    occurred_at: datetime
    declared_events: int | None
    declared_tracks: tuple[DeclaredTrack, ...]
    """The tracks with chunks, in ``TRACKS`` order."""
    source: SourcePosition


COLUMNS = columns_of(SessionEventRow)
DECLARED = ("declared_events", "declared_tracks")
"""Columns only a ``SessionEnded`` fills: a frame of other events may leave them out."""
_DECLARED_TRACKS = pl.List(
    pl.Struct({"track": pl.String, "chunks": pl.UInt64, "samples": pl.UInt64})
)


def from_any(events: pl.DataFrame, kind: type[Event]) -> pl.DataFrame:
    declared = (
        (pl.col("event_count").cast(pl.UInt64), _declared_tracks())
        if kind is SessionEnded
        else (pl.lit(None, pl.UInt64), pl.lit([], _DECLARED_TRACKS))
    )
    return events.with_columns(
        event_type=pl.lit(kind.__name__),
        declared_events=declared[0],
        declared_tracks=declared[1],
    ).select(COLUMNS)


def _declared_tracks() -> pl.Expr:
    """The flat ``<track>_chunks`` and ``<track>_samples`` fields of a ``SessionEnded`` as a
    list of the tracks that had chunks."""
    tracks = pl.concat_list(
        pl.struct(
            pl.lit(track).alias("track"),
            pl.col(f"{track}_chunks").cast(pl.UInt64).alias("chunks"),
            pl.col(f"{track}_samples").cast(pl.UInt64).alias("samples"),
        )
        for track in TRACKS
    )
    return tracks.list.eval(
        pl.element().filter(
            (pl.element().struct.field("chunks") > 0) | (pl.element().struct.field("samples") > 0)
        )
    ).cast(_DECLARED_TRACKS)
