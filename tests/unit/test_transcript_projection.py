"""Any order and any duplication of a session's turn events gives the same transcript."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consumers.projections.source import SourcePosition
from consumers.projections.transcripts import (
    TranscriptRow,
    latest_rows,
    transcript_row,
)
from schemas import TurnStarted, TurnStopped
from tests.events import turn_pair

HERE = SourcePosition("turn-events", 0, 0)


def _session_events(turns: int) -> list[TurnStarted | TurnStopped]:
    events: list[TurnStarted | TurnStopped] = []
    for index in range(turns):
        events.extend(turn_pair(turn_id=f"turn-{index}", text=f"words {index}", seq=2 * index))
    return events


def _content(rows: dict[tuple[str, str], TranscriptRow]) -> dict[tuple[str, str], TranscriptRow]:
    return {key: row._replace(source=HERE) for key, row in rows.items()}


@given(st.data(), st.integers(min_value=1, max_value=6))
def test_any_order_and_duplication_gives_the_same_rows(data: st.DataObject, turns: int) -> None:
    events = _session_events(turns)
    reference = latest_rows([transcript_row(e, HERE) for e in events])
    extra = data.draw(st.lists(st.sampled_from(events), max_size=3 * turns))
    delivered = data.draw(st.permutations(events + extra))
    rows = [
        transcript_row(e, SourcePosition("turn-events", 0, offset))
        for offset, e in enumerate(delivered)
    ]
    assert _content(latest_rows(rows)) == _content(reference)


def test_a_stop_read_before_its_start_still_wins() -> None:
    started, stopped = turn_pair()
    rows = latest_rows([transcript_row(stopped, HERE), transcript_row(started, HERE)])
    (row,) = rows.values()
    assert row.complete
    assert row.text == "Where is my order?"
    assert row.duration_ms == 1500


def test_a_started_turn_is_open_until_it_stops() -> None:
    started, _ = turn_pair()
    row = transcript_row(started, HERE)
    assert not row.complete
    assert row.stopped_at is None
    assert row.duration_ms is None
