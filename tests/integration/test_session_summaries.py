"""A session's row in ``session_summaries_generations``, filled on insert, gives the summary
that its turns, ledger and chunks give (its completeness, sealed or not, included), however its
rows were split into inserts and however often each was written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.storage.clickhouse import Store
from queries import Reader
from queries.sessions import session_detail
from queries.summaries import summaries
from tests.conftest import unique_name
from tests.integration.stored_rows import (
    T0,
    chunk_rows,
    event_rows,
    extents,
    ledger_seqs,
    session_end,
    split,
    stored_versions,
    transcript_rows,
)

pytestmark = pytest.mark.integration


def test_the_stored_summary_is_the_summary_of_the_turns_and_ledger(clickhouse: Client) -> None:
    store = Store(clickhouse)
    store.migrate()
    reader = Reader(clickhouse)

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        stored_versions(),
        ledger_seqs,
        session_end,
        st.lists(extents, max_size=12),
        st.lists(st.integers(0, 1_000), max_size=3),
        st.randoms(use_true_random=False),
    )
    def agree(
        rows: list[dict[str, Any]],
        seqs: list[int],
        end: tuple[int, list[tuple[str, int, int]]] | None,
        chunks: list[Any],
        cuts: list[int],
        rng: Any,
    ) -> None:
        session_id = unique_name("s")
        rng.shuffle(rows)
        chunks += rng.sample(chunks, len(chunks) // 2)  # duplicates
        rng.shuffle(chunks)
        ledger = [event_rows(session_id, part) for part in split(seqs, cuts)]
        if end is not None:  # at any place among the inserts: it may come before the rest
            last = event_rows(session_id, [max(seqs, default=0) + 1], end)
            ledger.insert(rng.randint(0, len(ledger)), last)
        for part in split(rows, cuts):
            store.insert("transcripts", transcript_rows(session_id, part), generation=1)
        for part in split(chunks, cuts):
            store.insert("audio_chunks", chunk_rows(session_id, part), generation=1)
        for frame in ledger:
            store.insert("session_events", frame, generation=1)
        stored = reader.rows(
            "SELECT count() FROM session_summaries_generations WHERE session_id = {s:String}",
            s=session_id,
        )
        assert stored[0][0] >= 1, "the summary is read from the session's row, not rebuilt"
        assert summaries(reader, [session_id]) == [session_detail(reader, session_id).summary]

    agree()


def test_a_batch_replayed_after_a_crash_between_its_turns_and_their_summary_fills_the_summary(
    clickhouse: Client,
) -> None:
    """A crash can land after an insert wrote the turns and before its materialized view wrote
    the session's row. The replayed batch is then refused by its token, and must still reach
    the view (a summary set takes the same versions twice without change)."""
    store = Store(clickhouse)
    store.migrate()
    reader = Reader(clickhouse)
    session_id = unique_name("s")
    rows = transcript_rows(
        session_id,
        [
            {
                "turn_id": "t0",
                "role": "user",
                "started_at": T0,
                "stopped_at": T0 + timedelta(seconds=2),
                "complete": True,
                "seq": 1,
            }
        ],
    )
    clickhouse.command("DETACH TABLE session_summaries_from_transcripts")
    try:
        store.insert("transcripts", rows, generation=1, dedup_token=f"{session_id}|crash")
    finally:
        clickhouse.command("ATTACH TABLE session_summaries_from_transcripts")
    store.insert("transcripts", rows, generation=1, dedup_token=f"{session_id}|crash")

    assert reader.rows(
        "SELECT count() FROM transcripts_generations WHERE session_id = {s:String}", s=session_id
    ) == [(1,)], "the replay itself is refused"
    stored = reader.rows(
        "SELECT count() FROM session_summaries_generations WHERE session_id = {s:String}",
        s=session_id,
    )
    assert stored[0][0] >= 1
    assert summaries(reader, [session_id]) == [session_detail(reader, session_id).summary]
