"""Audio chunks: where they are stored, and which samples of the recording each one covers.

Frameworks hand over PCM with no timing. ``RecordingChunker`` counts samples per track from the
start of a recording segment and anchors sample 0 to the wall clock when the segment started,
which is what later lines the transcript up with the audio. Files go through a chunk store
(``audio.stores``: a folder or a bucket, ``TSTORE_CHUNK_STORE``) off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from audio.stores import ChunkStore, ChunkWriter, open_chunk_store
from audio.wav import SAMPLE_WIDTH, wav_bytes
from producers.producer import TranscriptProducer
from schemas import Track

DEFAULT_CHUNK_STORE = "tstore-chunks"


LONGEST_FOLDER = 200
"""Past this a session's folder is cut and named by a hash too: a name may hold 255 bytes on
most filesystems, and an id of 256 characters, percent-encoded, more than 3 000."""


def session_folder(session_id: str) -> str:
    """A session's id as one name of a chunk's key, the folder of the session's chunks. Used
    as it is, ``room/7`` made two folders and ``..`` a key every store refuses, which failed
    the call's audio (and left its session open); each id gets its own folder, percent-encoded
    (``room%2F7``; a name of dots alone with its dots encoded too, which nothing else gives;
    a long one cut, after ``%_``, which no encoding gives, by a hash of the id)."""
    folder = quote(session_id, safe="")
    if not folder.strip("."):
        return folder.replace(".", "%2E")
    if len(folder) > LONGEST_FOLDER:
        digest = hashlib.blake2b(session_id.encode(), digest_size=10).hexdigest()
        return f"{folder[: LONGEST_FOLDER // 2]}%_{digest}"
    return folder


def default_chunk_store() -> ChunkStore:
    """Where an adapter writes chunks unless told: ``TSTORE_CHUNK_STORE``, the same setting
    the service reads, else ``./tstore-chunks``."""
    return open_chunk_store(os.environ.get("TSTORE_CHUNK_STORE") or DEFAULT_CHUNK_STORE)


@dataclass
class _Segment:
    """One recording segment: sample 0 is ``started_at``; samples handed over so far, per track."""

    started_at: datetime
    samples: Counter[Track] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Placement:
    """Where a chunk goes: its segment, its first sample and its number in the track."""

    track: Track
    pcm: bytes
    frames: int
    anchor: datetime
    start: int
    seq: int


class RecordingChunker:
    def __init__(self, producer: TranscriptProducer, session_id: str, store: ChunkWriter) -> None:
        self.producer = producer
        self.session_id = session_id
        self.store = store
        self._segment: _Segment | None = None
        self._chunk_seq: Counter[Track] = Counter()
        self._writing: set[asyncio.Future[None]] = set()

    @property
    def recording(self) -> bool:
        """A segment is open: more chunks may come."""
        return self._segment is not None

    def start_segment(self, at: datetime | None = None) -> None:
        """A new recording segment: sample 0 is now (or ``at``)."""
        self._segment = _Segment(at or datetime.now(UTC))

    def stop_segment(self) -> None:
        self._segment = None

    async def add(self, track: Track, pcm: bytes, sample_rate: int, channels: int = 1) -> None:
        """Store one chunk of a track as WAV and publish its ChunkReady."""
        await self.add_buffer({track: pcm}, sample_rate, channels)

    async def add_buffer(
        self, tracks: Mapping[Track, bytes], sample_rate: int, channels: int = 1
    ) -> None:
        """Store one buffer's chunk of each track as WAV and publish their ChunkReady events.

        Every chunk is placed before the first write, in the segment open when the buffer was
        handed over: the writes yield to the loop, and a framework may stop (or restart) the
        recording meanwhile (Pipecat runs each event handler as a task of its own), which must
        not move the rest of this buffer into another segment.
        """
        placements = [self._place(track, pcm, channels) for track, pcm in tracks.items()]
        writing = asyncio.ensure_future(self._write_all(placements, sample_rate, channels))
        self._writing.add(writing)
        writing.add_done_callback(self._writing.discard)
        await asyncio.shield(writing)  # a cancelled caller leaves the buffer to be written

    async def drain(self) -> None:
        """Wait until every buffer handed over is written and published: a session's end
        must come after its last chunk. A write that failed has raised to its caller."""
        while self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)

    async def _write_all(
        self, placements: list[_Placement | None], sample_rate: int, channels: int
    ) -> None:
        for placement in placements:
            if placement is not None:
                await self._write(placement, sample_rate, channels)

    def _place(self, track: Track, pcm: bytes, channels: int) -> _Placement | None:
        frames = len(pcm) // (SAMPLE_WIDTH * channels)
        if frames == 0:
            return None
        if self._segment is None:
            self.start_segment()
        assert self._segment is not None
        segment = self._segment
        start, seq = segment.samples[track], self._chunk_seq[track]
        segment.samples[track] += frames
        self._chunk_seq[track] += 1
        return _Placement(track, pcm, frames, segment.started_at, start, seq)

    async def _write(self, chunk: _Placement, sample_rate: int, channels: int) -> None:
        track, seq, anchor = chunk.track, chunk.seq, chunk.anchor
        key = f"{session_folder(self.session_id)}/{anchor:%Y%m%dT%H%M%S%f}/{track}-{seq:06d}.wav"
        data = wav_bytes(chunk.pcm, sample_rate, channels)
        stored = await asyncio.to_thread(self.store.put, key, data)
        self.producer.chunk_ready(
            self.session_id,
            chunk_id=f"{self.session_id}/{track}/{seq}",
            track=track,
            chunk_seq=seq,
            uri=stored.uri,
            format="wav",
            sample_rate=sample_rate,
            channels=channels,
            start_sample=chunk.start,
            num_samples=chunk.frames,
            recording_started_at=anchor,
            byte_size=stored.byte_size,
            sha256=stored.sha256,
        )
