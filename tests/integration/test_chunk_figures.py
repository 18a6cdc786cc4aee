"""A session's chunk figures counted in Python (pages, details) and in SQL (the scan of
``/v1/incomplete``) agree on any chunk versions: the engine checks the Python. A detail
counts the chunk index it shows, which agrees with its versions too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.storage.sealing import CHUNK_TYPE
from queries.models import Chunk
from queries.sealing import figures_of, index_figures, track_figures
from schemas import Track
from tests.events import T0

pytestmark = pytest.mark.integration

_VERSIONS = f"{{versions:Array({CHUNK_TYPE})}}"

extents = st.tuples(
    st.sampled_from(["user", "assistant", "mixed"]),
    st.integers(0, 5),  # chunk_seq: a few, so that versions of one chunk meet
    st.sampled_from([T0, T0 + timedelta(seconds=7)]),  # two recording segments
    st.integers(0, 300),
    st.integers(0, 200),
)


@st.composite
def chunk_versions(draw: st.DrawFn) -> list[tuple[object, ...]]:
    """Versions of a session's chunks; each its own seq, as each came in its own event."""
    drawn = draw(st.lists(extents, max_size=12))
    return [(t, c, at, start, start + n, seq) for seq, (t, c, at, start, n) in enumerate(drawn)]


def test_python_and_the_engine_count_chunks_alike(clickhouse: Client) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(chunk_versions())
    def alike(versions: list[tuple[object, ...]]) -> None:
        (engine, echoed), *_ = clickhouse.query(
            f"SELECT {track_figures(_VERSIONS)}, {_VERSIONS}", parameters={"versions": versions}
        ).result_rows
        assert [tuple(f) for f in engine] == [
            (f.track, f.chunks, f.samples, f.gaps, f.overlaps) for f in figures_of(echoed)
        ]

    alike()


@settings(max_examples=150, deadline=None)
@given(chunk_versions())
def test_a_chunk_index_counts_as_its_versions_do(versions: list[tuple[object, ...]]) -> None:
    fields = ("track", "chunk_seq", "recording_started_at", "start_sample", "end_sample", "seq")
    rows: list[dict[str, Any]] = [dict(zip(fields, v, strict=True)) for v in versions]
    latest = {(r["track"], r["chunk_seq"]): r for r in sorted(rows, key=lambda r: r["seq"])}
    index: dict[Track, list[Chunk]] = {}
    for (track, _), row in sorted(latest.items()):
        index.setdefault(track, []).append(_chunk(row))
    assert index_figures(index) == figures_of(rows)


def _chunk(row: dict[str, Any]) -> Chunk:
    return Chunk.model_validate(
        {name: row[name] for name in ("chunk_seq", "start_sample", "end_sample")}
        | {
            "chunk_id": "c",
            "uri": "file:///c.wav",
            "format": "wav",
            "sample_rate": 16_000,
            "channels": 1,
            "start_ms": 0,
            "end_ms": 0,
            "recording_started_at": row["recording_started_at"],
            "starts_at": T0,
            "ends_at": T0,
            "byte_size": 0,
            "sha256": "",
        }
    )
