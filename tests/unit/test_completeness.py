"""The completeness rules on hand-made sessions: each state, and each kind of hole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queries.completeness import Clock, Declaration, Ledger, TrackSeen, as_read, completeness

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
CLOCK = Clock(T0 + timedelta(minutes=5), timedelta(minutes=10))
END = Declaration(
    seq=9, events=10, tracks={"user": (3, 48_000), "assistant": (3, 48_000)}, ended_at=T0
)
WHOLE_AUDIO = (TrackSeen("user", 3, 48_000), TrackSeen("assistant", 3, 48_000))


def _sealed(**changes: object) -> Ledger:
    whole = {
        "events": 10,
        "last_seq": 9,
        "last_event_at": T0,
        "ends": (END,),
        "tracks": WHOLE_AUDIO,
    }
    return Ledger(**(whole | changes))  # type: ignore[arg-type]


def test_a_session_that_ended_with_everything_it_declared_is_sealed() -> None:
    found = completeness(_sealed(), CLOCK)
    assert (found.state, found.complete, found.holes) == ("sealed", True, [])
    assert (found.events, found.expected, found.missing) == (10, 10, 0)
    assert found.ended_at == T0
    assert [(t.track, t.chunks, t.expected_chunks) for t in found.tracks] == [
        ("user", 3, 3),
        ("assistant", 3, 3),
    ]


def test_a_session_still_talking_is_open_and_its_audio_is_not_judged_yet() -> None:
    found = completeness(
        Ledger(events=4, last_seq=3, last_event_at=T0, tracks=(TrackSeen("user", 1, 10, 1),)),
        CLOCK,
        open_turns=1,
    )
    assert (found.state, found.holes, found.complete) == ("open", [], True)
    assert found.open_turns == 1, "a turn under way is counted, not a hole while the call goes on"
    assert found.tracks[0].expected_chunks is None
    assert found.ended_at is None


def test_a_turn_left_open_is_a_hole_once_the_session_ended_or_was_abandoned() -> None:
    talking = Ledger(events=4, last_seq=3, last_event_at=T0 - timedelta(minutes=6))
    abandoned = completeness(talking, CLOCK, open_turns=1)
    assert (abandoned.state, abandoned.holes, abandoned.complete) == (
        "abandoned",
        ["open_turns"],
        False,
    )
    patient = Clock(now=T0, abandoned_after=timedelta(minutes=10))
    assert (as_read(abandoned, patient).state, as_read(abandoned, patient).holes) == ("open", [])
    ended = completeness(_sealed(), CLOCK, open_turns=2)
    assert (ended.state, ended.holes) == ("sealed_with_holes", ["open_turns"])
    holey = Ledger(events=3, last_seq=3, last_event_at=T0 - timedelta(minutes=6))
    assert completeness(holey, CLOCK, open_turns=1).holes == ["missing_events", "open_turns"]


def test_a_cached_open_call_with_a_turn_under_way_is_read_abandoned_with_the_hole() -> None:
    cached = completeness(Ledger(events=4, last_seq=3, last_event_at=T0), CLOCK, open_turns=1)
    later = as_read(
        cached, Clock(now=T0 + timedelta(hours=1), abandoned_after=CLOCK.abandoned_after)
    )
    assert (later.state, later.holes, later.complete) == ("abandoned", ["open_turns"], False)


def test_a_silent_session_without_an_end_is_abandoned() -> None:
    silent = Ledger(events=4, last_seq=3, last_event_at=T0 - timedelta(minutes=6))
    found = completeness(silent, CLOCK)
    assert (found.state, found.complete) == ("abandoned", True)
    assert found.last_seen_at == T0 - timedelta(minutes=6)
    later_turn = completeness(silent, CLOCK, last_turn_at=T0)
    assert later_turn.state == "open", "a turn stored later counts as the session's last sign"


def test_an_end_never_makes_a_session_abandoned() -> None:
    long_ago = Clock(T0 + timedelta(days=30), timedelta(minutes=10))
    assert completeness(_sealed(), long_ago).state == "sealed"


def test_events_missing_before_the_end_are_holes() -> None:
    found = completeness(_sealed(events=8), CLOCK)
    assert (found.state, found.holes, found.missing) == ("sealed_with_holes", ["missing_events"], 2)


def test_an_end_declaring_more_events_than_the_highest_seq_expects_them() -> None:
    lost_tail = _sealed(events=6, last_seq=5, ends=(Declaration(5, 10, END.tracks, T0),))
    found = completeness(lost_tail, CLOCK)
    assert (found.expected, found.missing, found.holes) == (10, 4, ["missing_events"])


@pytest.mark.parametrize(
    ("user", "hole"),
    [
        (TrackSeen("user", 2, 32_000), "missing_chunks"),
        (TrackSeen("user", 4, 64_000), "extra_chunks"),
        (TrackSeen("user", 3, 48_000, gaps=1), "sample_gaps"),
        (TrackSeen("user", 3, 48_000, overlaps=2), "sample_overlaps"),
        (TrackSeen("user", 3, 47_000), "sample_count"),
    ],
)
def test_each_kind_of_chunk_hole_of_an_ended_session(user: TrackSeen, hole: str) -> None:
    found = completeness(_sealed(tracks=(user, WHOLE_AUDIO[1])), CLOCK)
    assert (found.state, found.complete, found.holes) == ("sealed_with_holes", False, [hole])


def test_a_declared_track_with_nothing_stored_is_missing_its_chunks() -> None:
    found = completeness(_sealed(tracks=WHOLE_AUDIO[1:]), CLOCK)
    assert found.holes == ["missing_chunks"]
    user = found.tracks[0]
    assert (user.track, user.chunks, user.expected_chunks) == ("user", 0, 3)


def test_chunks_of_an_undeclared_track_are_extra() -> None:
    mixed = TrackSeen("mixed", 1, 480_000)
    assert completeness(_sealed(tracks=(*WHOLE_AUDIO, mixed)), CLOCK).holes == ["extra_chunks"]


def test_the_newest_of_two_ends_is_the_one_held_against() -> None:
    early = Declaration(seq=5, events=6, tracks={}, ended_at=T0 - timedelta(minutes=1))
    found = completeness(_sealed(ends=(END, early)), CLOCK)
    assert (found.state, found.ended_at, found.expected) == ("sealed", T0, 10)


def test_holes_of_every_kind_are_listed_once_in_a_fixed_order() -> None:
    found = completeness(
        _sealed(
            events=7,
            tracks=(TrackSeen("user", 2, 10, gaps=1), TrackSeen("assistant", 2, 10, overlaps=1)),
        ),
        CLOCK,
        open_turns=1,
    )
    assert found.holes == [
        "missing_events",
        "open_turns",
        "missing_chunks",
        "sample_gaps",
        "sample_overlaps",
    ]
