from __future__ import annotations

import itertools
import random
import struct

from hypothesis import given
from hypothesis import strategies as st

from producers.simulator import SAMPLE_RATE, script_call, tone_hz, track_audio


@given(st.integers(0, 10_000), st.integers(2, 30))
def test_calls_alternate_and_barge_ins_overlap_the_answer(seed: int, turns: int) -> None:
    script = script_call(random.Random(seed), turns)
    assert [t.role for t in script] == ["assistant", "user"] * (turns // 2) + ["assistant"] * (
        turns % 2
    )
    for turn, following in itertools.pairwise(script):
        assert turn.start_s < turn.end_s
        if turn.interrupted:
            assert following.role == "user"
            assert following.start_s < turn.end_s, "the user barges in before the answer ends"
        else:
            assert following.start_s > turn.end_s
    assert not script[-1].interrupted


def _dominant_hz(pcm: bytes) -> float:
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    crossings = sum(1 for a, b in itertools.pairwise(samples) if a < 0 <= b)
    return crossings * SAMPLE_RATE / len(samples)


def test_each_turn_sounds_at_its_own_tone_on_its_own_track() -> None:
    script = script_call(random.Random(7), 8)
    for turn in script:
        inside = track_audio(script, turn.role, turn.start_s + 0.05, turn.end_s - 0.05)
        assert abs(_dominant_hz(inside) - tone_hz(turn.index)) < 0.02 * tone_hz(turn.index)
    gap_start, gap_end = script[0].end_s + 0.01, script[1].start_s - 0.01
    assert set(track_audio(script, "assistant", gap_start, gap_end)) == {0}
