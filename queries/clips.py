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

from audio.stores import ChunkUnavailableError
from queries.alignment import Hole, Piece, TrackAlignment, Voice
from queries.errors import BadQueryError, NotFoundError

Samples = npt.NDArray[np.int16]

SAMPLE_WIDTH = 2
_CANONICAL_HEADER = 44
_HEADER_PREFIX = 512
"""Bytes fetched to read a WAV header; one with more metadata chunks before the samples is
read again in full."""
_MAX_HEADER = 1 << 16
MAX_CLIP_BYTES = 128 << 20
"""A clip is built in memory: about 11 minutes of 48 kHz stereo."""


class RangeReader(Protocol):
    def read_ranges(self, uri: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Bytes ``start``..``end`` (end excluded) of the object at ``uri``, per range;
        ``audio.stores.ChunkUnavailableError`` when they cannot all be read."""
        ...


@dataclass(frozen=True)
class WavLayout:
    data_offset: int
    channels: int
    sample_width: int
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

    def cut(self, tracks: Sequence[TrackAlignment], since: datetime) -> Clip:
        """One channel per alignment, in their order; a track without audio is silent."""
        rates = {t.sample_rate for t in tracks if t.sample_rate is not None}
        if not rates:
            raise NotFoundError("no audio of the session covers this window")
        if len(rates) > 1:
            named = ", ".join(f"{t.track} {t.sample_rate} Hz" for t in tracks if t.sample_rate)
            raise BadQueryError("track", f"the tracks differ in sample rate ({named}): ask each")
        rate = rates.pop()
        length = max(t.samples for t in tracks)
        if length * len(tracks) * SAMPLE_WIDTH > MAX_CLIP_BYTES:
            raise BadQueryError("window", f"clips are at most {MAX_CLIP_BYTES >> 20} MiB of WAV")
        out = np.zeros((length, len(tracks)), dtype="<i2")
        holes: dict[Voice, list[Hole]] = {}
        for column, track in enumerate(tracks):
            holes[track.track] = (
                list(track.holes) if track.pieces else [Hole(offset=0, length=length)]
            )
            for piece in track.pieces:
                found = self._samples(piece)
                out[piece.offset : piece.offset + len(found), column] = found
                if short := piece.last - piece.first - len(found):
                    holes[track.track].append(Hole(offset=piece.offset + len(found), length=short))
            holes[track.track].sort(key=lambda h: h.offset)
        return Clip(wav_bytes(out, rate), rate, since, holes)

    def _samples(self, piece: Piece) -> Samples:
        """The piece's samples of its channel; fewer when the object ends before the index
        said it would."""
        if piece.format == "wav":
            sliced = self._sliced(piece)
            if sliced is not None:
                return sliced
        return self._decoded(piece)

    def _sliced(self, piece: Piece) -> Samples | None:
        """The piece's bytes of a 16-bit PCM WAV chunk; None for any other WAV."""
        with self._lock:
            known = piece.uri in self._layouts
            layout = self._layouts.get(piece.uri)
        if known:
            return None if layout is None else self._slice(piece, layout, None)
        guess = WavLayout(_CANONICAL_HEADER, piece.channels, SAMPLE_WIDTH, _MAX_FRAMES)
        head, body = self.reader.read_ranges(
            piece.uri, [(0, min(_HEADER_PREFIX, piece.byte_size)), _byte_range(piece, guess)]
        )
        layout = wav_layout(head) or wav_layout(self._longer_header(piece))
        self._remember(piece.uri, layout)
        if layout is None:
            return None
        as_guessed = (layout.data_offset, layout.channels) == (_CANONICAL_HEADER, piece.channels)
        return self._slice(piece, layout, body if as_guessed else None)

    def _longer_header(self, piece: Piece) -> bytes:
        (head,) = self.reader.read_ranges(piece.uri, [(0, min(_MAX_HEADER, piece.byte_size))])
        return head

    def _slice(self, piece: Piece, layout: WavLayout, body: bytes | None) -> Samples:
        if body is None:
            (body,) = self.reader.read_ranges(piece.uri, [_byte_range(piece, layout)])
        frame = layout.channels * SAMPLE_WIDTH
        whole = len(body) // frame * frame
        frames = np.frombuffer(body[:whole], dtype="<i2").reshape(-1, layout.channels)
        last = max(0, min(piece.last, layout.frames) - piece.first)
        return frames[:last, min(piece.channel, layout.channels - 1)]

    def _decoded(self, piece: Piece) -> Samples:
        source = io.BufferedReader(_RangeFile(self.reader, piece.uri, piece.byte_size), 1 << 16)
        try:
            with soundfile.SoundFile(source) as audio:
                audio.seek(min(piece.first, audio.frames))
                frames = audio.read(piece.last - piece.first, dtype="int16", always_2d=True)
                return np.ascontiguousarray(frames[:, min(piece.channel, audio.channels - 1)])
        except soundfile.LibsndfileError as exc:
            raise ChunkUnavailableError(
                piece.uri, f"not readable as {piece.format}: {exc}"
            ) from None

    def _remember(self, uri: str, layout: WavLayout | None) -> None:
        with self._lock:
            self._layouts[uri] = layout
            while len(self._layouts) > self._capacity:
                self._layouts.popitem(last=False)


_MAX_FRAMES = 1 << 62


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
                handle.tell(), parsed.getnchannels(), SAMPLE_WIDTH, parsed.getnframes()
            )
    except (wave.Error, EOFError):
        return None


def wav_bytes(samples: npt.NDArray[np.int16], sample_rate: int) -> bytes:
    """16-bit PCM WAV of ``samples`` (frames by channels)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(SAMPLE_WIDTH)
        out.setframerate(sample_rate)
        out.writeframes(samples.astype("<i2", copy=False).tobytes())
    return buffer.getvalue()


class _RangeFile(io.RawIOBase):
    """An object read through ranged requests, for a decoder that seeks."""

    def __init__(self, reader: RangeReader, uri: str, size: int) -> None:
        self._reader, self._uri, self._size, self._at = reader, uri, size, 0

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
        (data,) = self._reader.read_ranges(self._uri, [(self._at, end)])
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)
