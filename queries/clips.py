"""Clips cut from the chunk objects: the samples an alignment names, fetched by byte range
and written as one WAV.

A WAV chunk of 16-bit PCM is sliced, never decoded: its header gives where the samples begin,
so a piece is one byte range. The header of a chunk not seen yet is fetched in the same request
as the piece, guessing the canonical 44-byte header (the one this project's producers write);
it is remembered, so later clips of the chunk read only their samples. Any other recording
(LiveKit's OGG/Opus, an Egress file) is decoded by libsndfile (``soundfile``) reading the object
through ranged reads, so a seek near the piece does not fetch the whole file either.
"""

from __future__ import annotations

import io
import struct
import threading
import wave
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt
import soundfile
import soxr

from audio.stores import ChunkUnavailableError
from audio.wav import SAMPLE_WIDTH, wav_bytes
from queries.alignment import Hole, Piece, TrackAlignment, Voice
from queries.errors import BadQueryError, NotFoundError

Samples = npt.NDArray[np.int16]

_CANONICAL_HEADER = 44
_HEADER_PREFIX = 512
"""Bytes fetched to read a WAV header; one with more metadata chunks before the samples is
read again in full."""
_MAX_HEADER = 1 << 16
MAX_CLIP_BYTES = 64 << 20
"""A clip is built in memory: about 11 minutes of 48 kHz mono."""
MAX_FETCH_BYTES = 256 << 20
"""What a clip may read of its chunks: the channels it does not keep are fetched too."""
MAX_HOLES = 100
"""Holes listed in a clip's header; their total is always given."""
_CUTTING_AT_ONCE = 4
"""Clips built at a time: each holds its samples in memory while it is built."""
_MAX_FRAMES = 1 << 62


class RangeReader(Protocol):
    def read_ranges(self, uri: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Bytes ``start``..``end`` (end excluded) of the object at ``uri``, per range;
        ``audio.stores.ChunkUnavailableError`` when they cannot all be read."""
        ...


@dataclass(frozen=True)
class WavLayout:
    data_offset: int
    channels: int
    rate: int
    frames: int


@dataclass(frozen=True)
class Clip:
    wav: bytes
    sample_rate: int
    since: datetime
    holes: dict[Voice, list[Hole]]
    """Per track, the samples no chunk covered (silence in ``wav``)."""


class ClipCutter:
    """Cuts clips through ``reader``, remembering the layout of up to ``layouts`` WAV chunks.
    Safe to share between threads."""

    def __init__(self, reader: RangeReader, layouts: int = 65_536) -> None:
        self.reader = reader
        self._layouts: OrderedDict[str, WavLayout | None] = OrderedDict()
        self._capacity = layouts
        self._lock = threading.Lock()
        self._cutting = threading.BoundedSemaphore(_CUTTING_AT_ONCE)

    def cut(self, tracks: Sequence[TrackAlignment], since: datetime) -> Clip:
        """One channel per alignment, in their order; a track without audio is silent.

        The clip takes the highest rate of its tracks, so none loses detail: a track recorded
        at another rate (a 16 kHz user against a 48 kHz agent) is cut at its own, sample for
        sample, then resampled, and its holes are counted in the clip's samples."""
        rates = {t.sample_rate for t in tracks if t.sample_rate is not None}
        if not rates:
            raise NotFoundError("no audio of the session covers this window")
        rate = max(rates)
        length = max(_rescaled(t.samples, t.sample_rate or rate, rate) for t in tracks)
        fetched = sum((p.last - p.first) * p.channels for t in tracks for p in t.pieces)
        if length * len(tracks) * SAMPLE_WIDTH > MAX_CLIP_BYTES:
            raise BadQueryError("track", f"clips are at most {MAX_CLIP_BYTES >> 20} MiB of WAV")
        if fetched * SAMPLE_WIDTH > MAX_FETCH_BYTES:
            raise BadQueryError(
                "track", f"this clip would read over {MAX_FETCH_BYTES >> 20} MiB of chunks"
            )
        with self._cutting:
            out = np.zeros((length, len(tracks)), dtype="<i2")
            holes = {
                t.track: self._column(out[:, column], t, rate) for column, t in enumerate(tracks)
            }
            return Clip(wav_bytes(out.tobytes(), rate, len(tracks)), rate, since, holes)

    def _column(self, out: Samples, track: TrackAlignment, rate: int) -> list[Hole]:
        """``out`` (at ``rate``) filled with the track; the samples left silent, as holes."""
        own_rate = track.sample_rate or rate
        if own_rate == rate:
            return self._fill(out, track, rate)
        own = np.zeros(track.samples, dtype="<i2")
        holes = self._fill(own, track, own_rate)
        resampled = soxr.resample(own, own_rate, rate, quality="HQ")[: len(out)]
        out[: len(resampled)] = resampled
        edges = [(h.offset, h.offset + h.length) for h in holes]
        scaled = [(_rescaled(a, own_rate, rate), _rescaled(b, own_rate, rate)) for a, b in edges]
        return [Hole(offset=a, length=b - a) for a, b in scaled if b > a]

    def _fill(self, out: Samples, track: TrackAlignment, rate: int) -> list[Hole]:
        """``out`` filled with the track's pieces; the samples left silent, as holes."""
        if not track.pieces:
            return [Hole(offset=0, length=len(out))]
        holes = list(track.holes)
        for piece in track.pieces:
            found = self._samples(piece, rate)
            out[piece.offset : piece.offset + len(found)] = found
            if short := piece.last - piece.first - len(found):
                holes.append(Hole(offset=piece.offset + len(found), length=short))
        return merged(holes)

    def _samples(self, piece: Piece, rate: int) -> Samples:
        """The piece's samples of its channel; fewer when the object ends before the index
        said it would."""
        if piece.format == "wav":
            sliced = self._sliced(piece, rate)
            if sliced is not None:
                return sliced
        return self._decoded(piece, rate)

    def _sliced(self, piece: Piece, rate: int) -> Samples | None:
        """The piece's bytes of a 16-bit PCM WAV chunk; None for any other WAV."""
        with self._lock:
            known = piece.uri in self._layouts
            layout = self._layouts.get(piece.uri)
            if known:
                self._layouts.move_to_end(piece.uri)
        if known:
            return None if layout is None else self._slice(piece, layout, rate, None)
        guess = WavLayout(_CANONICAL_HEADER, piece.channels, rate, _MAX_FRAMES)
        head, body = self.reader.read_ranges(
            piece.uri, [(0, min(_HEADER_PREFIX, piece.byte_size)), _byte_range(piece, guess)]
        )
        layout = wav_layout(head) or wav_layout(self._longer_header(piece))
        self._remember(piece.uri, layout)
        if layout is None:
            return None
        as_guessed = (layout.data_offset, layout.channels) == (_CANONICAL_HEADER, piece.channels)
        return self._slice(piece, layout, rate, body if as_guessed else None)

    def _longer_header(self, piece: Piece) -> bytes:
        (head,) = self.reader.read_ranges(piece.uri, [(0, min(_MAX_HEADER, piece.byte_size))])
        return head

    def _slice(self, piece: Piece, layout: WavLayout, rate: int, body: bytes | None) -> Samples:
        _agrees(piece, layout.rate, layout.channels, rate)
        if body is None:
            (body,) = self.reader.read_ranges(piece.uri, [_byte_range(piece, layout)])
        frame = layout.channels * SAMPLE_WIDTH
        whole = len(body) // frame * frame
        frames = np.frombuffer(body[:whole], dtype="<i2").reshape(-1, layout.channels)
        last = max(0, min(piece.last, layout.frames) - piece.first)
        return frames[:last, piece.channel]

    def _decoded(self, piece: Piece, rate: int) -> Samples:
        raw = _RangeFile(self.reader, piece.uri, piece.byte_size)
        try:
            with soundfile.SoundFile(io.BufferedReader(raw, 1 << 16)) as audio:
                _agrees(piece, audio.samplerate, audio.channels, rate)
                audio.seek(min(piece.first, audio.frames))
                frames = audio.read(piece.last - piece.first, dtype="int16", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as exc:
            raise raw.failure or ChunkUnavailableError(
                piece.uri, f"not readable as {piece.format}: {exc}"
            ) from None
        if raw.failure is not None:  # libsndfile took the failed read for the end of the file
            raise raw.failure
        return np.ascontiguousarray(frames[:, piece.channel])

    def _remember(self, uri: str, layout: WavLayout | None) -> None:
        with self._lock:
            self._layouts[uri] = layout
            while len(self._layouts) > self._capacity:
                self._layouts.popitem(last=False)


def _agrees(piece: Piece, rate: int, channels: int, expected_rate: int) -> None:
    """The object is the audio its row says: cut at another rate, or from a channel it does
    not have, a clip would be wrong without a word."""
    if rate != expected_rate or piece.channel >= channels:
        raise ChunkUnavailableError(
            piece.uri,
            f"holds {channels} channel(s) at {rate} Hz; its row says channel {piece.channel + 1} "
            f"at {expected_rate} Hz",
        )


def _rescaled(samples: int, rate: int, to_rate: int) -> int:
    """A count of samples at ``rate`` as the nearest count at ``to_rate``."""
    return (2 * samples * to_rate + rate) // (2 * rate)


def merged(holes: Sequence[Hole]) -> list[Hole]:
    """Holes in order, those that touch or overlap made one."""
    out: list[Hole] = []
    for hole in sorted(holes, key=lambda h: h.offset):
        if out and hole.offset <= out[-1].offset + out[-1].length:
            end = max(out[-1].offset + out[-1].length, hole.offset + hole.length)
            out[-1] = Hole(offset=out[-1].offset, length=end - out[-1].offset)
        else:
            out.append(hole)
    return out


def _byte_range(piece: Piece, layout: WavLayout) -> tuple[int, int]:
    """The piece's bytes, within the object's size: an index row that claims more samples than
    its object holds gets what there is (and the clip a hole)."""
    frame = layout.channels * SAMPLE_WIDTH
    end = min(layout.data_offset + min(piece.last, layout.frames) * frame, piece.byte_size)
    return min(layout.data_offset + piece.first * frame, end), end


def wav_layout(head: bytes) -> WavLayout | None:
    """Where the samples of a 16-bit PCM WAV begin, read from its first bytes; None for any
    other WAV, or when ``head`` ends before the samples do begin."""
    handle = io.BytesIO(head)
    try:
        with wave.open(handle) as parsed:
            if parsed.getsampwidth() != SAMPLE_WIDTH:
                return None
            return WavLayout(
                handle.tell(), parsed.getnchannels(), parsed.getframerate(), parsed.getnframes()
            )
    except (wave.Error, EOFError, RuntimeError, ValueError, struct.error):
        return None  # RuntimeError: a chunk that runs past the size its RIFF header gives


class _RangeFile(io.RawIOBase):
    """An object read through ranged requests, for a decoder that seeks."""

    def __init__(self, reader: RangeReader, uri: str, size: int) -> None:
        self._reader, self._uri, self._size, self._at = reader, uri, size, 0
        self.failure: ChunkUnavailableError | None = None
        """A read that failed: libsndfile calls back through C, which cannot carry it."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        end = min(self._at + len(buffer), self._size)
        if end <= self._at:
            return 0
        try:
            (data,) = self._reader.read_ranges(self._uri, [(self._at, end)])
        except ChunkUnavailableError as exc:
            self.failure = exc
            return 0
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)
