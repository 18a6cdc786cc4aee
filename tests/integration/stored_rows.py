"""Rows for the read model written straight through ``Store.insert``, the projector's write
path, for tests of the query library that need exact control over stored versions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl

from consumers.projections.transcripts import COLUMNS

COMPLETE = 1 << 63
"""The version bit of a complete turn (see ``consumers.projections.transcripts``)."""
_WORDS = pl.List(pl.Struct({"text": pl.String, "start": pl.Float64, "end": pl.Float64}))


def transcript_rows(session_id: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows of ``transcripts`` as the projector writes them, from the fields a test cares
    about (``turn_id``, ``role``, ``started_at``, ``stopped_at``, ``complete``, ``seq``, and
    any other column it sets); the version follows from completeness and seq."""
    return pl.DataFrame(
        [
            {
                "session_id": session_id,
                "bot_id": "rules",
                "framework": "test",
                "duration_ms": None
                if r["stopped_at"] is None
                else (r["stopped_at"] - r["started_at"]) // timedelta(milliseconds=1),
                "text": "",
                "interrupted": False,
                "timed_out": False,
                "user_id": None,
                "language": None,
                "words": [],
                "version": r["seq"] + (COMPLETE if r["complete"] else 0),
                "source_topic": "t",
                "source_partition": 0,
                "source_offset": n,
                **r,
            }
            for n, r in enumerate(rows)
        ],
        schema_overrides={
            "started_at": pl.Datetime("us", "UTC"),
            "stopped_at": pl.Datetime("us", "UTC"),
            "duration_ms": pl.Int64,
            "user_id": pl.String,
            "language": pl.String,
            "words": _WORDS,
            "version": pl.UInt64,
        },
    ).select(COLUMNS)
