"""Any order, duplication and batching of a session's turn events gives the same transcript."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.projections import project
from consumers.projections.source import SOURCE_COLUMNS
from consumers.projections.transcripts import latest
from schemas import TurnStarted, TurnStopped
from schemas.models import Event
from tests.events import turn_pair
from tests.frames import decoded


def _session_events(turns: int) -> list[TurnStarted | TurnStopped]:
    events: list[TurnStarted | TurnStopped] = []
    for index in range(turns):
        events.extend(turn_pair(turn_id=f"turn-{index}", text=f"words {index}", seq=2 * index))
    return events


def _shown(events: Sequence[Event], cuts: Sequence[int] = ()) -> pl.DataFrame:
    """The transcripts a reader would see, without where each row was read, when the events
    arrive in batches that end at ``cuts``."""
    ends = sorted({*cuts, len(events)})
    batches = [events[start:end] for start, end in pairwise([0, *ends])]
    rows = pl.concat(project(decoded(batch).frames)["transcripts"] for batch in batches)
    return latest(rows).drop(SOURCE_COLUMNS)


@settings(deadline=None)
@given(st.data(), st.integers(min_value=1, max_value=6))
def test_any_order_duplication_and_batching_gives_the_same_rows(
    data: st.DataObject, turns: int
) -> None:
    events = _session_events(turns)
    extra = data.draw(st.lists(st.sampled_from(events), max_size=3 * turns))
    delivered = data.draw(st.permutations(events + extra))
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=len(delivered)), max_size=4))
    assert _shown(delivered, cuts).equals(_shown(events))


def test_a_stop_read_before_its_start_still_wins() -> None:
    started, stopped = turn_pair()
    (row,) = _shown([stopped, started]).iter_rows(named=True)
    assert row["complete"]
    assert row["text"] == "Where is my order?"
    assert row["duration_ms"] == 1500
    assert row["words"] == [{"text": "Where", "start": 0.0, "end": 0.3}]


def test_a_started_turn_is_open_until_it_stops() -> None:
    started, _ = turn_pair()
    (row,) = _shown([started]).iter_rows(named=True)
    assert not row["complete"]
    assert row["stopped_at"] is None
    assert row["duration_ms"] is None
    assert row["words"] == []
