"""Rows for the read model written straight through ``Store.insert``, the projector's write
path, for tests of the query library that need exact control over stored versions."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import polars as pl
import pytest
from hypothesis import strategies as st

from analytics.definitions import RELATIVE_ACCURACY
from consumers.projections.audio_chunks import COLUMNS as CHUNK_COLUMNS
from consumers.projections.session_events import COLUMNS as EVENT_COLUMNS
from consumers.projections.transcripts import COLUMNS

COMPLETE = 1 << 63
"""The version bit of a complete turn (see ``consumers.projections.transcripts``)."""
T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
_WORDS = pl.List(pl.Struct({"text": pl.String, "start": pl.Float64, "end": pl.Float64}))
_DECLARED = pl.List(pl.Struct({"track": pl.String, "chunks": pl.UInt64, "samples": pl.UInt64}))


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


def event_rows(
    session_id: str,
    seqs: list[int],
    end: tuple[int, list[tuple[str, int, int]]] | None = None,
    *,
    bot_id: str = "rules",
    start: datetime = T0,
) -> pl.DataFrame:
    """Ledger rows of ``session_events`` for ``seqs``, one a second from ``start``; with
    ``end`` (event count, declared (track, chunks, samples)), the last seq is a
    ``SessionEnded``."""
    last = max(seqs, default=-1)
    return pl.DataFrame(
        [
            {
                "session_id": session_id,
                "seq": seq,
                "event_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{session_id}/{seq}")),
                "event_type": "SessionEnded" if end and seq == last else "TurnStarted",
                "bot_id": bot_id,
                "occurred_at": start + timedelta(seconds=seq),
                "declared_events": end[0] if end and seq == last else None,
                "declared_tracks": [{"track": t, "chunks": c, "samples": s} for t, c, s in end[1]]
                if end and seq == last
                else [],
                "source_topic": "t",
                "source_partition": 0,
                "source_offset": n,
            }
            for n, seq in enumerate(seqs)
        ],
        schema_overrides={
            "occurred_at": pl.Datetime("us", "UTC"),
            "declared_events": pl.UInt64,
            "declared_tracks": _DECLARED,
        },
    ).select(EVENT_COLUMNS)


Extent = tuple[str, int, int, int, int]
"""A chunk as completeness sees it: track, chunk_seq, segment (seconds after ``T0``), first
sample, number of samples."""


def chunk_rows(session_id: str, extents: list[Extent], seq: int | None = None) -> pl.DataFrame:
    """Rows of ``audio_chunks`` for ``extents``, as the projector writes them; their seqs
    count from ``seq``, or else follow from each extent (so two versions of a chunk differ)."""
    return pl.DataFrame(
        [
            {
                "session_id": session_id,
                "bot_id": "rules",
                "track": track,
                "chunk_seq": chunk_seq,
                "chunk_id": f"{track}/{chunk_seq}",
                "uri": "file:///dev/null",
                "format": "wav",
                "sample_rate": 16_000,
                "channels": 1,
                "start_sample": start,
                "end_sample": start + length,
                "start_ms": start // 16,
                "end_ms": (start + length) // 16,
                "recording_started_at": T0 + timedelta(seconds=segment),
                "starts_at": T0 + timedelta(seconds=segment),
                "ends_at": T0 + timedelta(seconds=segment),
                "byte_size": 44 + 2 * length,
                "sha256": "0" * 64,
                "seq": _version(track, chunk_seq, segment, start, length)
                if seq is None
                else seq + n,
                "source_topic": "c",
                "source_partition": 0,
                "source_offset": n,
            }
            for n, (track, chunk_seq, segment, start, length) in enumerate(extents)
        ],
        schema_overrides={
            name: pl.Datetime("us", "UTC")
            for name in ("recording_started_at", "starts_at", "ends_at")
        },
    ).select(CHUNK_COLUMNS)


def _version(*extent: object) -> int:
    """A seq per extent: two versions of a chunk always differ in seq, as two events do."""
    return int.from_bytes(hashlib.blake2b(repr(extent).encode(), digest_size=7).digest(), "big")


extents = st.tuples(
    st.sampled_from(["user", "assistant", "mixed"]),
    st.integers(0, 5),
    st.integers(0, 1),
    st.integers(0, 3).map(lambda n: 100 * n),
    st.sampled_from([0, 50, 100, 200]),
)


declared_track = st.tuples(
    st.sampled_from(["user", "assistant", "mixed"]), st.integers(0, 6), st.integers(0, 1_200)
)
"""A track a ``SessionEnded`` declares: track, chunks, samples."""
ledger_seqs = st.lists(st.integers(0, 100), max_size=30)
"""The seqs of a session's events stored in its ledger, in any order, some maybe missing."""
session_end = st.none() | st.tuples(st.integers(1, 110), st.lists(declared_track, max_size=3))
"""A ``SessionEnded`` as ``event_rows`` takes it (its event count and tracks), or none."""


def split(rows: list[Any], cuts: list[int]) -> list[list[Any]]:
    """``rows`` in consecutive inserts, cut where ``cuts`` say (empty inserts left out)."""
    edges = [0, *sorted(c % (len(rows) + 1) for c in cuts), len(rows)]
    return [rows[a:b] for a, b in pairwise(edges) if a < b]


def sketched(values: list[int], level: float = 0.5) -> Any:
    """A percentile as the analytics give it (``analytics.definitions.RELATIVE_ACCURACY``):
    the value at rank ``level`` * (n - 1) rounded down, within 1% (and a float's rounding:
    1 is estimated 1.01)."""
    ranked = sorted(values)
    at = ranked[int(level * (len(ranked) - 1))]
    return pytest.approx(at, rel=RELATIVE_ACCURACY * (1 + 1e-9))
