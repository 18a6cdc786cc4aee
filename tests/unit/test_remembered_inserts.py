"""What a cache keeper holds as folded between refreshes (``queries.facts.remembered``): an
insert a later refresh may list again is kept, one none will list is forgotten, and past the
bound only those the next mark span lists are kept (the late span's are folded again)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import queries.facts
from queries.facts import OVERLAP, Listed, remembered

SINCE = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _insert(session: str, seconds_after_mark: float) -> Listed:
    return ("transcripts", session, SINCE + timedelta(seconds=seconds_after_mark))


def test_inserts_no_later_refresh_lists_are_forgotten() -> None:
    before_late_span = _insert("a", -OVERLAP.total_seconds() - 1)
    in_late_span = _insert("b", -OVERLAP.total_seconds() + 1)
    after_mark = _insert("c", 1)
    assert remembered({before_late_span, in_late_span}, {after_mark}, SINCE) == {
        in_late_span,
        after_mark,
    }


def test_past_the_bound_only_what_came_after_the_mark_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queries.facts, "REMEMBERED", 2)
    kept = {_insert("b", -10), _insert("c", 1)}
    assert remembered(kept, set(), SINCE) == kept
    assert remembered(kept, {_insert("d", 2)}, SINCE) == {_insert("c", 1), _insert("d", 2)}
