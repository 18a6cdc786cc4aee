"""Cutting clips from chunk objects on a local folder, read through the real ChunkReader."""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audio.stores import ChunkReader, ChunkUnavailableError
from audio.wav import wav_bytes
from queries.alignment import Hole, Piece, TrackAlignment, Voice
from queries.clips import ClipCutter, merged, wav_layout

RATE = 16_000
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def tone(seconds: float, rate: int = RATE, hz: int = 440) -> bytes:
    n = np.arange(round(seconds * rate))
    return (8000 * np.sin(2 * np.pi * hz * n / rate)).astype("<i2").tobytes()


def whole(piece: Piece, rate: int = RATE, track: Voice = "user") -> TrackAlignment:
    length = piece.last - piece.first
    return TrackAlignment(track=track, sample_rate=rate, samples=length, pieces=[piece], holes=[])


def piece_of(path: Path, fmt: str, first: int, last: int, *, channels: int = 1) -> Piece:
    return Piece(
        chunk_id="c",
        uri=path.as_uri(),
        format=fmt,
        channels=channels,
        channel=0,
        first=first,
        last=last,
        offset=0,
        segment_sample=first,
        byte_size=path.stat().st_size,
    )


class FailingAfter:
    """The real reader, until the store goes away after ``reads`` requests."""

    def __init__(self, reads: int) -> None:
        self.reader, self.left = ChunkReader(), reads

    def read_ranges(self, uri: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        self.left -= 1
        if self.left < 0:
            raise ChunkUnavailableError(uri, "the store went away")
        return self.reader.read_ranges(uri, ranges)


def test_a_wav_header_is_read_wherever_its_samples_begin() -> None:
    canonical = wav_bytes(tone(0.1), RATE, 1)
    assert wav_layout(canonical[:512]) is not None
    assert wav_layout(canonical[:512]).data_offset == 44  # type: ignore[union-attr]
    listed = canonical[:12] + b"LIST" + struct.pack("<I", 4) + b"INFO" + canonical[12:]
    listed = listed[:4] + struct.pack("<I", len(listed) - 8) + listed[8:]
    layout = wav_layout(listed[:512])
    assert layout is not None
    assert (layout.data_offset, layout.rate, layout.frames) == (56, RATE, 1600)


def test_a_wav_header_that_lies_about_its_size_is_not_a_layout() -> None:
    lying = b"RIFF" + struct.pack("<I", 40) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
    lying += struct.pack("<HHIIHH", 1, 1, RATE, 2 * RATE, 2, 16) + b"LIST" + struct.pack("<I", 26)
    lying += b"\0" * 26 + b"data" + struct.pack("<I", 4) + b"\0\0\0\0"
    assert wav_layout(lying) is None


def test_touching_holes_are_one() -> None:
    holes = [Hole(offset=10, length=5), Hole(offset=0, length=3), Hole(offset=15, length=1)]
    assert merged(holes) == [Hole(offset=0, length=3), Hole(offset=10, length=6)]


def test_a_wav_piece_is_its_samples_byte_for_byte(tmp_path: Path) -> None:
    pcm = tone(2.0)
    path = tmp_path / "c.wav"
    path.write_bytes(wav_bytes(pcm, RATE, 1))
    clip = ClipCutter(ChunkReader()).cut([whole(piece_of(path, "wav", 100, 16_100))], T0)
    with soundfile.SoundFile(io.BytesIO(clip.wav)) as got:
        samples = got.read(dtype="int16")
    assert np.array_equal(samples, np.frombuffer(pcm, dtype="<i2")[100:16_100])
    assert clip.holes == {"user": []}


def test_a_store_failing_while_decoding_is_an_error_not_silence(tmp_path: Path) -> None:
    path = tmp_path / "c.ogg"
    noise = np.random.default_rng(1).integers(-8000, 8000, 120 * RATE).astype("<i2")
    soundfile.write(path, noise, RATE, format="OGG")
    assert path.stat().st_size > 4 << 16, "more than a few reads"
    cutter = ClipCutter(FailingAfter(reads=2))
    with pytest.raises(ChunkUnavailableError, match="went away"):
        cutter.cut([whole(piece_of(path, "ogg", 60 * RATE, 65 * RATE))], T0)


def test_audio_at_another_rate_than_its_row_says_is_refused(tmp_path: Path) -> None:
    wav, ogg = tmp_path / "c.wav", tmp_path / "c.ogg"
    wav.write_bytes(wav_bytes(tone(1.0), RATE, 1))
    soundfile.write(ogg, np.frombuffer(tone(1.0), dtype="<i2"), RATE, format="OGG")
    for path, fmt in ((wav, "wav"), (ogg, "ogg")):
        wrong = whole(piece_of(path, fmt, 0, 100), rate=48_000)
        with pytest.raises(ChunkUnavailableError, match=r"16000 Hz; its row says .* 48000 Hz"):
            ClipCutter(ChunkReader()).cut([wrong], T0)


def test_tracks_at_different_rates_make_one_stereo_clip_at_the_higher_rate(
    tmp_path: Path,
) -> None:
    user, agent = tmp_path / "user.wav", tmp_path / "agent.wav"
    user.write_bytes(wav_bytes(tone(1.0, RATE, 440), RATE, 1))
    agent.write_bytes(wav_bytes(tone(1.0, 48_000, 1_000), 48_000, 1))
    heard = whole(piece_of(user, "wav", 0, 12_000))  # the last quarter second never arrived
    heard = heard.model_copy(update={"samples": RATE, "holes": [Hole(offset=12_000, length=4_000)]})
    clip = ClipCutter(ChunkReader()).cut(
        [heard, whole(piece_of(agent, "wav", 0, 48_000), 48_000, "assistant")], T0
    )
    rate, samples = clip.sample_rate, soundfile.read(io.BytesIO(clip.wav), dtype="int16")[0]
    assert (rate, samples.shape) == (48_000, (48_000, 2))
    assert clip.holes == {"user": [Hole(offset=36_000, length=12_000)], "assistant": []}
    spectrum = np.abs(np.fft.rfft(samples[:36_000], axis=0))
    assert [round(float(hz)) for hz in spectrum.argmax(axis=0) * rate / 36_000] == [440, 1_000]
    assert np.abs(samples[36_500:, 0]).max() < 80, "the hole is silent, but for the filter's edge"
