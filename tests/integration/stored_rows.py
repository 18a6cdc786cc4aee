"""Rows for the read model written straight through ``Store.insert``, the projector's write
path, for tests of the query library that need exact control over stored versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import strategies as st

from consumers.projections.transcripts import COLUMNS

COMPLETE = 1 << 63
"""The version bit of a complete turn (see ``consumers.projections.transcripts``)."""
T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
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


@st.composite
def stored_versions(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Rows as the projector writes them: per turn an open version (start), maybe a complete
    one (stop), maybe a later correction, each maybe written twice; starts may tie."""
    rows: list[dict[str, Any]] = []
    for index in range(draw(st.integers(1, 6))):
        start = T0 + timedelta(microseconds=draw(st.integers(0, 20_000_000)))
        length = timedelta(microseconds=draw(st.integers(0, 5_000_000)))
        turn = {
            "turn_id": f"turn-{index}",
            "role": draw(st.sampled_from(["user", "assistant"])),
            "started_at": start,
        }
        versions = [turn | {"stopped_at": None, "complete": False, "seq": 2 * index}]
        if draw(st.booleans()):
            versions.append(turn | {"stopped_at": start + length, "complete": True, "seq": 90})
            if draw(st.booleans()):
                later = start + length + timedelta(milliseconds=draw(st.integers(0, 900)))
                versions.append(turn | {"stopped_at": later, "complete": True, "seq": 91 + index})
        for version in versions:
            rows += [version] * draw(st.integers(1, 2))
    return rows
