"""The transcript lined up with the recording: which samples of which chunks sound at any
moment of a session.

A chunk says where it lies: the wall clock of its segment's sample 0 (``recording_started_at``)
and its range of samples in that segment. So any instant maps to a sample of each chunk, and a
window of wall-clock time to sample ranges of the chunks that cover it: across chunk
boundaries, across segments (a reconnect starts a new one, at its own sample 0), whatever order
the chunks arrived in. Each track is aligned on its own, since the user's and the assistant's
audio are cut at different boundaries. Within a segment the mapping is exact: contiguous
chunks give contiguous samples. A window's edges and a new segment's start are placed on the
nearest sample.

Pure: the chunk index comes from ``queries.chunks``, the bytes from ``queries.clips``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Literal

from pydantic import Field

from queries.errors import BadQueryError
from queries.models import Answer, Chunk
from schemas import Track

Voice = Literal["user", "assistant"]
"""A speaker's track: what a clip or an alignment is asked for."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = 1_000_000


class Piece(Answer):
    """Samples ``first``..``last`` (end excluded, counted from the chunk's own first sample)
    of one channel of a chunk, which sound from sample ``offset`` of the window."""

    chunk_id: str
    uri: str
    format: str
    channels: int
    channel: int = Field(description="The chunk's channel that carries the track (0 first).")
    first: int
    last: int
    offset: int
    segment_sample: int = Field(description="``first`` counted from the segment's sample 0.")
    byte_size: int


class Hole(Answer):
    """Samples of the window that no chunk covers: silence in a clip."""

    offset: int
    length: int


class TrackAlignment(Answer):
    """One track over a window: the pieces of chunks that play it, in order, and the holes
    between them, which together cover the window's samples exactly once."""

    track: Voice
    sample_rate: int | None = Field(description="Null when no chunk covers the window.")
    samples: int = Field(description="The window's length in samples (0 without audio).")
    pieces: list[Piece]
    holes: list[Hole]


def track_sources(index: Mapping[Track, Sequence[Chunk]], track: Voice) -> tuple[list[Chunk], bool]:
    """The chunks that carry ``track``: its own chunks, or else (True) the session's mixed
    recordings (LiveKit's are stereo: user left, agent right)."""
    if own := index.get(track):
        return list(own), False
    return list(index.get("mixed") or ()), True


def channel_of(chunk: Chunk, track: Voice, mixed: bool) -> int:
    """The channel of ``chunk`` that carries ``track``: the right one of a stereo mix for the
    assistant; the first otherwise (a mono mix carries both voices)."""
    return 1 if mixed and track == "assistant" and chunk.channels > 1 else 0


def precedence(chunk: Chunk) -> tuple[Fraction, datetime, int]:
    """Where chunks of a track overlap, the first in this order plays and the others only
    fill on from where it ends, in a clip as at an instant: the first to begin (exactly, in
    microseconds from its segment's clock and its first sample), then the earlier segment,
    then the lower number."""
    began = Fraction(
        microseconds(chunk.recording_started_at) * chunk.sample_rate + chunk.start_sample * _US,
        chunk.sample_rate,
    )
    return began, chunk.recording_started_at, chunk.chunk_seq


def sounding_at(
    index: Mapping[Track, Sequence[Chunk]], track: Voice, at: datetime
) -> tuple[Chunk, int] | None:
    """The chunk of ``track`` that plays the instant ``at``, and the sample of its segment
    nearest to it: the one a window starting at ``at`` begins with (``align``)."""
    at_us = microseconds(at)
    chunks, _ = track_sources(index, track)
    playing = [
        (chunk, sample)
        for chunk in chunks
        if chunk.start_sample <= (sample := segment_sample(chunk, at_us)) < chunk.end_sample
    ]
    return min(playing, key=lambda found: precedence(found[0]), default=None)


def align(
    index: Mapping[Track, Sequence[Chunk]], track: Voice, since: datetime, until: datetime
) -> TrackAlignment:
    """The pieces of the chunks of ``track`` that fill ``since``..``until``, and the holes
    between them, overlaps played by ``precedence``."""
    chunks, mixed = track_sources(index, track)
    since_us, until_us = microseconds(since), microseconds(until)
    found: list[tuple[int, int, int, Chunk]] = []
    for chunk in chunks:
        length = _nearest((until_us - since_us) * chunk.sample_rate, _US)
        shift = segment_sample(chunk, since_us)
        lo, hi = max(0, chunk.start_sample - shift), min(length, chunk.end_sample - shift)
        if lo < hi:
            found.append((lo, hi, shift, chunk))
    rates = sorted({chunk.sample_rate for *_, chunk in found})
    if len(rates) > 1:
        named = ", ".join(map(str, rates))
        raise BadQueryError(
            "track",
            f"the {track} audio changes sample rate in this window ({named} Hz): ask "
            "for each part on its own",
        )
    if not rates:
        return TrackAlignment(track=track, sample_rate=None, samples=0, pieces=[], holes=[])
    rate = rates[0]
    samples = _nearest((until_us - since_us) * rate, _US)
    pieces: list[Piece] = []
    holes: list[Hole] = []
    covered = 0
    for lo, hi, shift, chunk in sorted(found, key=lambda f: precedence(f[3])):
        start = max(lo, covered)
        if start >= hi:
            continue
        if start > covered:
            holes.append(Hole(offset=covered, length=start - covered))
        pieces.append(
            Piece(
                chunk_id=chunk.chunk_id,
                uri=chunk.uri,
                format=chunk.format,
                channels=chunk.channels,
                channel=channel_of(chunk, track, mixed),
                first=start + shift - chunk.start_sample,
                last=hi + shift - chunk.start_sample,
                offset=start,
                segment_sample=start + shift,
                byte_size=chunk.byte_size,
            )
        )
        covered = hi
    if covered < samples:
        holes.append(Hole(offset=covered, length=samples - covered))
    return TrackAlignment(
        track=track, sample_rate=rate, samples=samples, pieces=pieces, holes=holes
    )


def segment_sample(chunk: Chunk, at_us: int) -> int:
    """The sample of ``chunk``'s segment nearest to the instant ``at_us`` (may lie outside
    the chunk, or before the segment began)."""
    return _nearest((at_us - microseconds(chunk.recording_started_at)) * chunk.sample_rate, _US)


def sample_offset(at: datetime, since: datetime, rate: int) -> int:
    """The sample of a window starting at ``since`` nearest to the instant ``at``."""
    return _nearest((microseconds(at) - microseconds(since)) * rate, _US)


def microseconds(at: datetime) -> int:
    """``at`` as whole microseconds since the epoch: the store's resolution, exact in ints."""
    return (at - _EPOCH) // timedelta(microseconds=1)


def _nearest(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer (halves up), exactly."""
    return (2 * numerator + denominator) // (2 * denominator)
