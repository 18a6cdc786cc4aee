"""How ``tstore incomplete`` shows what a session lacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from queries.completeness import Clock, Declaration, Ledger, TrackSeen, completeness
from queries.models import IncompleteSession, MetricsRow, RoleFigures, RolePercentiles
from tstore import render

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
CLOCK = Clock(T0 + timedelta(hours=1), timedelta(minutes=10))


def _shown(ledger: Ledger, missing: tuple[int, ...] = (), open_ids: tuple[str, ...] = ()) -> str:
    found = completeness(ledger, CLOCK, open_turns=len(open_ids))
    return render.incomplete(
        IncompleteSession(
            session_id="s",
            bot_id="b",
            completeness=found,
            missing_seqs=list(missing),
            open_turn_ids=list(open_ids),
        )
    )


def test_an_ended_session_shows_its_state_and_each_track_it_lacks() -> None:
    end = Declaration(
        seq=9, events=10, tracks={"user": (3, 300), "assistant": (2, 200)}, ended_at=T0
    )
    seen = (TrackSeen("user", 2, 200, gaps=1), TrackSeen("assistant", 2, 200))
    shown = _shown(Ledger(events=9, last_seq=9, last_event_at=T0, ends=(end,), tracks=seen), (4,))
    assert shown == (
        "s: sealed with holes, 9 of 10 events; missing seq 4; "
        "user track: 2 chunks, 200 samples of 3 and 300 declared, gaps 1"
    )


def test_an_abandoned_session_says_since_when_it_is_silent() -> None:
    shown = _shown(Ledger(events=3, last_seq=3, last_event_at=T0), (2,), ("a1",))
    assert shown == (
        "s: abandoned, 3 of 4 events; missing seq 2; open turns a1; "
        "silent since 2026-11-20 12:00:00 UTC"
    )


def test_a_group_without_a_value_is_shown_as_none_and_no_grouping_as_blank() -> None:
    def row(group: str | None) -> MetricsRow:
        nothing = RoleFigures(user=0, assistant=0)
        return MetricsRow(
            bucket_start=datetime(2026, 12, 6, tzinfo=UTC),
            group=group,
            turns=nothing,
            response_latency_ms=None,
            turn_duration_ms=RolePercentiles(user=None, assistant=None),
            talk_ms=nothing,
            talk_ratio=None,
            interruptions=0,
            interruptions_per_100_assistant_turns=None,
            interruptions_per_call_minute=None,
            user_stop_timeouts=0,
        )

    groups = render.metrics([row(""), row("en"), row(None)]).columns[1]
    assert list(groups.cells) == ["(none)", "en", ""]
