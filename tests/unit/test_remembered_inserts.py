"""What a cache keeper holds as folded between refreshes (``queries.folded.remembered``): an
insert a later refresh may list again is kept, one none will list is forgotten, and past the
bound only those the next mark span lists are kept, and the seconds of those let go whose every
insert was folded are noted, which the late spans pass over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import queries.folded
from queries.folded import OVERLAP, Listed, all_folded, relisted, remembered

SINCE = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _insert(session: str, seconds_after_mark: float) -> Listed:
    return ("transcripts", session, SINCE + timedelta(seconds=seconds_after_mark))


def test_inserts_no_later_refresh_lists_are_forgotten() -> None:
    before_late_span = _insert("a", -OVERLAP.total_seconds() - 1)
    in_late_span = _insert("b", -OVERLAP.total_seconds() + 1)
    after_mark = _insert("c", 1)
    assert remembered({before_late_span, in_late_span}, {after_mark}, SINCE) == (
        {in_late_span, after_mark},
        set(),
    )


def test_past_the_bound_only_what_came_after_the_mark_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queries.folded, "REMEMBERED", 2)
    kept = {_insert("b", -10), _insert("c", 1)}
    assert remembered(kept, set(), SINCE) == (kept, set())
    assert remembered(kept, {_insert("d", 2)}, SINCE) == (
        {_insert("c", 1), _insert("d", 2)},
        {_insert("b", -10)},
    )


def test_a_second_is_noted_as_folded_only_with_every_insert_the_engine_holds_of_it() -> None:
    second = SINCE - timedelta(seconds=10)
    a, b, c = _insert("a", -10), _insert("b", -9.5), _insert("c", -8.7)
    seconds = {second: (2, 7), second + timedelta(seconds=1): (1, 9)}
    assert all_folded({a, b, c}, seconds) == seconds
    assert all_folded({a, c}, seconds) == {second + timedelta(seconds=1): (1, 9)}
    assert all_folded(set(), seconds) == {}


def test_what_is_let_go_is_noted_from_the_next_late_span_to_the_end_of_the_mark_s_second() -> None:
    """The inserts of the mark's second after the mark were folded too: a note of only those
    before it would never match the second's figures, and it would be folded again."""
    since = SINCE + timedelta(milliseconds=400)
    through = since + timedelta(seconds=2)
    assert relisted(since, through) == (
        through - OVERLAP,
        SINCE + timedelta(milliseconds=999),
    )
