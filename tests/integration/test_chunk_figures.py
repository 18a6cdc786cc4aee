"""A session's chunk figures counted in Python (pages, details) and in SQL (the scan of
``/v1/incomplete``, a refresh's cards) agree on any chunk versions: the engine checks the
Python. A detail counts the chunk index it shows, which agrees with its stored versions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.storage.clickhouse import Store
from consumers.storage.sealing import CHUNK_TYPE
from queries import Reader
from queries.chunks import chunk_index
from queries.sealing import chunk_figures, figures_of, index_figures, track_figures
from tests.conftest import unique_name
from tests.events import T0
from tests.integration.stored_rows import Extent, chunk_rows
from tests.integration.stored_rows import extents as stored_extents

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


def test_a_detail_counts_the_chunk_index_it_shows_as_the_versions_count(
    clickhouse: Client,
) -> None:
    store = Store(clickhouse)
    store.migrate()
    reader = Reader(clickhouse)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(stored_extents, min_size=1, max_size=10))
    def alike(drawn: list[Extent]) -> None:
        session_id = unique_name("s")
        store.insert("audio_chunks", chunk_rows(session_id, drawn), generation=1)
        shown = index_figures(chunk_index(reader, session_id))
        assert shown == chunk_figures(reader, [session_id])[session_id]

    alike()
