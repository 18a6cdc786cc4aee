"""The audio-chunk index: one row per chunk, with its place on the recording's timeline.

Positions are given three ways, because readers ask in all three: samples (to cut the file),
milliseconds from the recording start (to seek a player) and wall clock (to line the chunk up
with turns, whose times are wall clock).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import polars as pl

from consumers.projections.source import SourcePosition, columns_of
from schemas import Track


class ChunkRow(NamedTuple):
    session_id: str
    bot_id: str
    track: Track
    chunk_seq: int
    chunk_id: str
    uri: str
    format: str
    sample_rate: int
    channels: int
    start_sample: int
    end_sample: int
    start_ms: int
    end_ms: int
    recording_started_at: datetime
    starts_at: datetime
    ends_at: datetime
    byte_size: int
    sha256: str
    seq: int
    source: SourcePosition


COLUMNS = columns_of(ChunkRow)


def _in_units(samples: pl.Expr, per_second: int) -> pl.Expr:
    """``samples * per_second // sample_rate``, exactly, without the product overflowing."""
    rate = pl.col("sample_rate").cast(pl.Int64)
    return (samples // rate) * per_second + (samples % rate) * per_second // rate


def from_ready(ready: pl.DataFrame) -> pl.DataFrame:
    start, end = pl.col("start_sample"), pl.col("end_sample")
    anchor = pl.col("recording_started_at")
    return (
        ready.with_columns(end_sample=start + pl.col("num_samples"))
        .with_columns(
            start_ms=_in_units(start, 1000),
            end_ms=_in_units(end, 1000),
            starts_at=anchor + pl.duration(microseconds=_in_units(start, 1_000_000)),
            ends_at=anchor + pl.duration(microseconds=_in_units(end, 1_000_000)),
        )
        .select(COLUMNS)
    )
