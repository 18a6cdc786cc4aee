"""Alignment of a time window to chunk samples: hand-made layouts and invariants for any."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queries.alignment import TrackAlignment, align, microseconds, sounding_at
from queries.errors import BadQueryError
from queries.models import Chunk
from schemas import Track

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RATE = 16_000


def chunk(
    seq: int,
    start: int,
    samples: int,
    *,
    segment: datetime = T0,
    rate: int = RATE,
    channels: int = 1,
) -> Chunk:
    def at(sample: int) -> datetime:
        return segment + timedelta(microseconds=sample * 1_000_000 // rate)

    return Chunk(
        chunk_seq=seq,
        chunk_id=f"s/user/{seq}",
        uri=f"file:///chunks/{seq}.wav",
        format="wav",
        sample_rate=rate,
        channels=channels,
        start_sample=start,
        end_sample=start + samples,
        start_ms=start * 1000 // rate,
        end_ms=(start + samples) * 1000 // rate,
        recording_started_at=segment,
        starts_at=at(start),
        ends_at=at(start + samples),
        byte_size=44 + 2 * channels * samples,
        sha256="0" * 64,
    )


def ms(n: float) -> timedelta:
    return timedelta(milliseconds=n)


def tiles(found: TrackAlignment) -> list[tuple[int, int, str]]:
    """The window's samples, as (offset, length, chunk or 'hole') in order."""
    parts = [(p.offset, p.last - p.first, p.chunk_id) for p in found.pieces]
    parts += [(h.offset, h.length, "hole") for h in found.holes]
    return sorted(parts)


def test_a_window_across_a_chunk_boundary_reads_both_chunks_contiguously() -> None:
    index: dict[Track, list[Chunk]] = {"user": [chunk(0, 0, RATE), chunk(1, RATE, RATE)]}
    found = align(index, "user", T0 + ms(750), T0 + ms(1250))
    assert found.sample_rate == RATE
    assert found.samples == 8_000
    assert [(p.chunk_id, p.first, p.last, p.offset) for p in found.pieces] == [
        ("s/user/0", 12_000, 16_000, 0),
        ("s/user/1", 0, 4_000, 4_000),
    ]
    assert found.holes == []


def test_a_reconnect_is_a_new_segment_placed_by_its_own_clock() -> None:
    second = T0 + timedelta(seconds=5)
    index: dict[Track, list[Chunk]] = {
        "user": [chunk(0, 0, 2 * RATE), chunk(1, 0, RATE, segment=second)]
    }
    found = align(index, "user", T0 + timedelta(seconds=1), T0 + timedelta(seconds=6))
    assert tiles(found) == [
        (0, RATE, "s/user/0"),
        (RATE, 3 * RATE, "hole"),
        (4 * RATE, RATE, "s/user/1"),
    ]
    assert found.pieces[1].segment_sample == 0


def test_chunks_that_overlap_play_each_sample_once() -> None:
    index: dict[Track, list[Chunk]] = {"user": [chunk(0, 0, RATE), chunk(1, RATE // 2, RATE)]}
    found = align(index, "user", T0, T0 + timedelta(seconds=2))
    assert tiles(found) == [
        (0, RATE, "s/user/0"),
        (RATE, RATE // 2, "s/user/1"),
        (3 * RATE // 2, RATE // 2, "hole"),
    ]
    assert found.pieces[1].first == RATE // 2


def test_of_overlapping_chunks_that_began_before_the_window_the_first_to_begin_plays() -> None:
    began_first = chunk(0, 3 * RATE, 15 * RATE, segment=T0 + timedelta(seconds=2))  # 5-20 s
    began_later = chunk(1, 8 * RATE, 12 * RATE)  # 8-20 s, of a segment that started earlier
    for order in ([began_first, began_later], [began_later, began_first]):
        found = align({"user": order}, "user", T0 + ms(12_000), T0 + ms(13_000))
        assert [(p.chunk_id, p.first) for p in found.pieces] == [("s/user/0", 7 * RATE)]


def test_the_assistant_is_the_right_channel_of_a_stereo_mix() -> None:
    mixed = chunk(0, 0, 10 * RATE, channels=2)
    found = align({"mixed": [mixed]}, "assistant", T0, T0 + timedelta(seconds=1))
    assert [p.channel for p in found.pieces] == [1]
    assert [p.channel for p in align({"mixed": [mixed]}, "user", T0, T0 + ms(5)).pieces] == [0]
    mono = chunk(1, 10 * RATE, RATE)
    mixes: dict[Track, list[Chunk]] = {"mixed": [mixed, mono]}  # a mono mix: both voices
    found = align(mixes, "assistant", T0 + ms(9_500), T0 + ms(10_500))
    assert [p.channel for p in found.pieces] == [1, 0]


def test_a_track_changing_sample_rate_within_the_window_is_refused_by_name() -> None:
    index: dict[Track, list[Chunk]] = {
        "user": [chunk(0, 0, RATE), chunk(1, 24_000, 24_000, rate=24_000)]
    }
    with pytest.raises(BadQueryError, match="16000, 24000 Hz") as refused:
        align(index, "user", T0, T0 + timedelta(seconds=2))
    assert refused.value.parameter == "track"


def test_no_chunk_in_the_window_is_no_audio() -> None:
    found = align(
        {"user": [chunk(0, 0, RATE)]}, "user", T0 + timedelta(seconds=3), T0 + timedelta(seconds=4)
    )
    assert (found.sample_rate, found.pieces, found.holes) == (None, [], [])


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[Chunk], datetime, datetime]:
    """Chunks of one track over a few segments, some missing, some sent twice, in any order."""
    chunks: list[Chunk] = []
    seq = 0
    segment = T0
    for _ in range(draw(st.integers(1, 3))):
        start = 0
        for _ in range(draw(st.integers(1, 5))):
            length = draw(st.integers(1, 3 * RATE))
            if draw(st.booleans()) or not chunks:
                chunks.append(chunk(seq, start, length, segment=segment))
            seq += 1
            start += length + draw(st.sampled_from([0, 0, 0, 7, RATE // 3]))
        segment += timedelta(microseconds=draw(st.integers(1, 20_000_000)))
    chunks += draw(st.lists(st.sampled_from(chunks), max_size=3))
    chunks = draw(st.permutations(chunks))
    since = T0 + timedelta(microseconds=draw(st.integers(-1_000_000, 30_000_000)))
    until = since + timedelta(microseconds=draw(st.integers(1, 20_000_000)))
    return chunks, since, until


@given(layouts())
def test_pieces_and_holes_tile_the_window_and_each_piece_sounds_when_it_plays(
    layout: tuple[list[Chunk], datetime, datetime],
) -> None:
    chunks, since, until = layout
    found = align({"user": chunks}, "user", since, until)
    if found.sample_rate is None:
        return
    at = 0
    for offset, length, _ in tiles(found):
        assert offset == at
        assert length > 0
        at += length
    assert at == found.samples
    by_id = {c.chunk_id: c for c in chunks}
    for piece in found.pieces:
        source = by_id[piece.chunk_id]
        assert source.start_sample <= source.start_sample + piece.first < source.end_sample
        assert piece.last <= source.end_sample - source.start_sample
        sounds_us = microseconds(source.recording_started_at) + (
            (source.start_sample + piece.first) * 1_000_000 / RATE
        )
        plays_us = microseconds(since) + piece.offset * 1_000_000 / RATE
        assert abs(sounds_us - plays_us) <= 1_000_000 / RATE


@given(layouts())
def test_the_order_chunks_arrived_in_changes_nothing(
    layout: tuple[list[Chunk], datetime, datetime],
) -> None:
    chunks, since, until = layout
    in_order = sorted(chunks, key=lambda c: c.chunk_seq)
    assert align({"user": chunks}, "user", since, until) == align(
        {"user": in_order}, "user", since, until
    )


@given(layouts())
def test_the_chunk_sounding_at_an_instant_is_the_one_a_window_from_it_begins_with(
    layout: tuple[list[Chunk], datetime, datetime],
) -> None:
    """``/at`` and a clip follow one rule where chunks overlap."""
    chunks, at, _ = layout
    found = align({"user": chunks}, "user", at, at + ms(1))
    first = found.pieces[0] if found.pieces and found.pieces[0].offset == 0 else None
    sounding = sounding_at({"user": chunks}, "user", at)
    if first is None:
        assert sounding is None
    else:
        assert sounding is not None
        assert (sounding[0].chunk_id, sounding[1]) == (first.chunk_id, first.segment_sample)
