"""How a session's time splits into talk, overlap and silence, on hand-computed sessions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from analytics.session_time import SessionTime, TurnTime, covered_ms, session_time


def test_a_plain_exchange_has_silence_between_turns_and_no_overlap() -> None:
    turns = [TurnTime("user", 0, 1_000), TurnTime("assistant", 1_600, 4_000)]
    assert session_time(turns) == SessionTime(call_ms=4_000, overlap_ms=0, silence_ms=600)


def test_a_barge_in_overlaps_the_assistant_until_it_stops() -> None:
    """The user starts at 3 s while the assistant talks until 3.5 s: 500 ms of overlap."""
    turns = [
        TurnTime("user", 0, 1_000),
        TurnTime("assistant", 1_500, 3_500),
        TurnTime("user", 3_000, 4_000),
    ]
    assert session_time(turns) == SessionTime(call_ms=4_000, overlap_ms=500, silence_ms=500)


def test_an_open_turn_covers_nothing_but_extends_the_call_to_its_start() -> None:
    turns = [TurnTime("user", 0, 1_000), TurnTime("assistant", 2_000, None)]
    assert session_time(turns) == SessionTime(call_ms=2_000, overlap_ms=0, silence_ms=1_000)


def test_turns_of_one_speaker_that_overlap_are_not_overlap() -> None:
    """Two user turns at once (a second transcript of the same speech) are one speaker."""
    turns = [TurnTime("user", 0, 2_000), TurnTime("user", 1_000, 3_000)]
    assert session_time(turns) == SessionTime(call_ms=3_000, overlap_ms=0, silence_ms=0)


def test_covered_time_counts_each_moment_once() -> None:
    assert covered_ms([(0, 10), (5, 20), (30, 40), (35, 36)]) == 30
    assert covered_ms([]) == 0


spans = st.lists(
    st.tuples(st.integers(0, 1_000), st.integers(0, 300)).map(lambda s: (s[0], s[0] + s[1])),
    max_size=12,
)


@given(spans)
def test_covered_time_is_the_count_of_covered_milliseconds(found: list[tuple[int, int]]) -> None:
    assert covered_ms(found) == len({ms for start, stop in found for ms in range(start, stop)})


@given(spans.filter(bool), spans)
def test_talk_overlap_and_silence_add_up_to_the_call(
    user: list[tuple[int, int]], assistant: list[tuple[int, int]]
) -> None:
    turns = [TurnTime("user", *s) for s in user] + [TurnTime("assistant", *s) for s in assistant]
    spent = session_time(turns)
    talk = covered_ms(user) + covered_ms(assistant)
    assert spent.call_ms == talk - spent.overlap_ms + spent.silence_ms
    assert 0 <= spent.overlap_ms <= min(covered_ms(user), covered_ms(assistant))
    assert spent.silence_ms >= 0
