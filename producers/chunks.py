"""Audio chunks: where they are stored, and which samples of the recording each one covers.

Frameworks hand over PCM with no timing. ``RecordingChunker`` counts samples per track from the
start of a recording segment and anchors sample 0 to the wall clock when the segment started,
which is what later lines the transcript up with the audio. Files go through a ``ChunkStore``
(a local directory here; object storage fits the same protocol) off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import wave
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from producers.producer import TranscriptProducer
from schemas import Track

SAMPLE_WIDTH = 2
"""16-bit PCM, what Pipecat and LiveKit hand over."""


@dataclass(frozen=True)
class StoredChunk:
    uri: str
    byte_size: int
    sha256: str


class ChunkStore(Protocol):
    def put(self, key: str, data: bytes) -> StoredChunk:
        """Store ``data`` under ``key`` (a relative path) and say where it is. May block."""
        ...


class LocalChunkStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def put(self, key: str, data: bytes) -> StoredChunk:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.tmp")
        with staged.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        staged.replace(path)
        return StoredChunk(path.as_uri(), len(data), hashlib.sha256(data).hexdigest())


def wav_bytes(pcm: bytes, sample_rate: int, channels: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


class RecordingChunker:
    def __init__(self, producer: TranscriptProducer, session_id: str, store: ChunkStore) -> None:
        self.producer = producer
        self.session_id = session_id
        self.store = store
        self._segment_started_at: datetime | None = None
        self._samples: Counter[Track] = Counter()
        self._chunk_seq: Counter[Track] = Counter()

    def start_segment(self, at: datetime | None = None) -> None:
        """A new recording segment: sample 0 is now (or ``at``)."""
        self._segment_started_at = at or datetime.now(UTC)
        self._samples.clear()

    def stop_segment(self) -> None:
        self._segment_started_at = None

    async def add(self, track: Track, pcm: bytes, sample_rate: int, channels: int = 1) -> None:
        """Store one chunk of a track as WAV and publish its ChunkReady."""
        frames = len(pcm) // (SAMPLE_WIDTH * channels)
        if frames == 0:
            return
        if self._segment_started_at is None:
            self.start_segment()
        assert self._segment_started_at is not None
        anchor = self._segment_started_at
        start, seq = self._samples[track], self._chunk_seq[track]
        self._samples[track] += frames
        self._chunk_seq[track] += 1
        key = f"{self.session_id}/{anchor:%Y%m%dT%H%M%S%f}/{track}-{seq:06d}.wav"
        stored = await asyncio.to_thread(self.store.put, key, wav_bytes(pcm, sample_rate, channels))
        self.producer.chunk_ready(
            self.session_id,
            chunk_id=f"{self.session_id}/{track}/{seq}",
            track=track,
            chunk_seq=seq,
            uri=stored.uri,
            format="wav",
            sample_rate=sample_rate,
            channels=channels,
            start_sample=start,
            num_samples=frames,
            recording_started_at=anchor,
            byte_size=stored.byte_size,
            sha256=stored.sha256,
        )
