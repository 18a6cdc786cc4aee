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
from typing import Any, get_args
from urllib.parse import quote

import annotated_types
import structlog
from pydantic import TypeAdapter, ValidationError

from audio.stores import ChunkStore, ChunkWriter, open_chunk_store
from audio.wav import SAMPLE_WIDTH, wav_bytes
from producers.producer import TranscriptProducer
from schemas import ChunkReady, ProducerInfo, Track
from schemas.models import MAX_ID_CHARS, UtcDatetime

log = structlog.get_logger(__name__)

DEFAULT_CHUNK_STORE = "tstore-chunks"


LONGEST_FOLDER = 200
"""Past this a session's folder is cut and named by a hash too: a name may hold 255 bytes on
most filesystems, and an id of 256 characters, percent-encoded, more than 3 000."""


def _digest(session_id: str) -> str:
    return hashlib.blake2b(session_id.encode(), digest_size=10).hexdigest()


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
        return f"{folder[: LONGEST_FOLDER // 2]}%_{_digest(session_id)}"
    return folder


def chunk_id(session_id: str, track: Track, name: int | str) -> str:
    """``session/track/name`` (a chunk's seq, or a recording's name), the chunk's name in its
    ``ChunkReady``. The contract holds ids of up to ``MAX_ID_CHARS``, so a session id near
    that length (which its turns may use) made every chunk id too long and every chunk
    refused; such an id is cut, after ``%_``, by a hash of it (the store keys chunks by
    session, track and seq: the name is a label)."""
    whole = f"{session_id}/{track}/{name}"
    if len(whole) <= MAX_ID_CHARS:
        return whole
    tail = f"%_{_digest(session_id)}/{track}/{name}"
    return session_id[: MAX_ID_CHARS - len(tail)] + tail


def default_chunk_store() -> ChunkStore:
    """Where an adapter writes chunks unless told: ``TSTORE_CHUNK_STORE``, the same setting
    the service reads, else ``./tstore-chunks``."""
    return open_chunk_store(os.environ.get("TSTORE_CHUNK_STORE") or DEFAULT_CHUNK_STORE)


def _contract_range(name: str) -> tuple[int, int]:
    """The bounds ``ChunkReady`` sets on an integer field, read from the model so that the
    chunker's early check and the event's validation never disagree."""
    metadata = ChunkReady.model_fields[name].metadata
    low = next(m.ge for m in metadata if isinstance(m, annotated_types.Ge))
    high = next(m.le for m in metadata if isinstance(m, annotated_types.Le))
    assert isinstance(low, int)
    assert isinstance(high, int)
    return low, high


SAMPLE_RATES = _contract_range("sample_rate")
CHANNELS = _contract_range("channels")
TRACKS: tuple[Track, ...] = get_args(Track)
_WALL_CLOCK: TypeAdapter[datetime] = TypeAdapter(UtcDatetime)

_CHECKER = ProducerInfo(framework="chunker-check")
"""The envelope of the event a chunk is checked as before its write: the producer's own
envelope fields were validated as it was made, or are checked again as it publishes."""


def _checked_format(sample_rate: float, channels: float) -> tuple[int, int]:
    """A developer's (or framework's) format the contract refuses, named before anything is
    placed or written: ``wave`` said ``sampling rate not specified`` of 0 Hz, and 0 channels
    divided by zero. A whole number given as a float (``16000.0``) is taken as the contract
    takes it, as an int."""
    checked = []
    for name, value, (low, high) in (
        ("sample_rate", sample_rate, SAMPLE_RATES),
        ("channels", channels, CHANNELS),
    ):
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole or not low <= value <= high:
            raise ValueError(f"{name}: {value!r}; a whole number in {low} .. {high}")
        checked.append(int(value))
    return checked[0], checked[1]


def _check_track(track: object) -> None:
    if track not in TRACKS:
        raise ValueError(f"track: {track!r}; one of {', '.join(TRACKS)}")


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


@dataclass(frozen=True)
class _Partial:
    """The bytes of a track's last frame that its buffer did not complete, and their format."""

    pcm: bytes
    sample_rate: int
    channels: int

    def fits(self, sample_rate: int, channels: int) -> bool:
        """Whether a buffer of this format can complete the frame: one of another cannot."""
        return (self.sample_rate, self.channels) == (sample_rate, channels)


class RecordingChunker:
    """One chunk per track per buffer handed over, written to the store, then announced.

    A buffer's length need not be a whole number of frames (``SAMPLE_WIDTH`` bytes per
    channel): it is a slice of the track's byte stream, which a framework or transport may
    cut at any byte. The bytes of an incomplete last frame are carried
    over to the track's next buffer rather than cut off, which would shift every later
    sample of the stream by a part of a frame (stereo channels swapped, 16-bit samples read
    from their high byte: noise). Only what is left when it can no longer be completed (the
    segment ends, the format changes, the session drains) is dropped, logged and counted in
    ``partial_bytes_dropped``.
    """

    def __init__(self, producer: TranscriptProducer, session_id: str, store: ChunkWriter) -> None:
        self.producer = producer
        self.session_id = session_id
        self.store = store
        self._segment: _Segment | None = None
        self._chunk_seq: Counter[Track] = Counter()
        self._partial: dict[Track, _Partial] = {}
        self._writing: set[asyncio.Future[None]] = set()
        self.partial_bytes_dropped = 0
        """Bytes of incomplete frames that no later buffer completed."""
        self.chunks_dropped = 0
        """Chunks placed while the producer was not running: not written, not announced."""

    @property
    def recording(self) -> bool:
        """A segment is open: more chunks may come."""
        return self._segment is not None

    def start_segment(self, at: datetime | None = None) -> None:
        """A new recording segment: sample 0 is now (or ``at``, which must be a wall clock
        the contract takes: one without a zone was refused only by each chunk's event, after
        its file was written)."""
        try:
            started_at = datetime.now(UTC) if at is None else _WALL_CLOCK.validate_python(at)
        except ValueError as exc:
            raise ValueError(f"at: {at!r}; {_first_error(exc)}") from None
        self._drop_partial("the segment ended")
        self._segment = _Segment(started_at)

    def stop_segment(self) -> None:
        """The recording stopped: the next chunk starts a segment, whose sample 0 is its own."""
        self._drop_partial("the segment ended")
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

        A value the contract refuses raises ``ValueError`` naming it before anything is
        placed or written: a chunk written and then refused left its file behind, and took a
        number and samples from the track that no event declared.
        """
        sample_rate, channels = _checked_format(sample_rate, channels)
        for track in tracks:
            _check_track(track)
        placements = self._place(tracks, sample_rate, channels)
        writing = asyncio.ensure_future(self._write_all(placements, sample_rate, channels))
        self._writing.add(writing)
        writing.add_done_callback(self._writing.discard)
        await asyncio.shield(writing)  # a cancelled caller leaves the buffer to be written

    async def drain(self) -> None:
        """Wait until every buffer handed over is written and published: a session's end
        must come after its last chunk. A write that failed has raised to its caller. An
        incomplete frame still held is dropped: nothing of the session follows."""
        self._drop_partial("the session's audio drained")
        while self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)

    async def _write_all(
        self, placements: list[_Placement], sample_rate: int, channels: int
    ) -> None:
        for placement in placements:
            await self._write(placement, sample_rate, channels)

    def _place(
        self, tracks: Mapping[Track, bytes], sample_rate: int, channels: int
    ) -> list[_Placement]:
        """Every track's chunk, each checked as its event will be; the segment, numbers,
        samples and incomplete frames change only once all of them passed."""
        frame = SAMPLE_WIDTH * channels
        segment = self._segment or _Segment(datetime.now(UTC))
        placements: list[_Placement] = []
        partials: dict[Track, bytes] = {}
        for track, pcm in tracks.items():
            held = self._partial.get(track)
            carried = held.pcm if held and held.fits(sample_rate, channels) else b""
            stream = carried + bytes(pcm)
            frames, rest = divmod(len(stream), frame)
            partials[track] = stream[len(stream) - rest :]
            if frames:
                start, seq = segment.samples[track], self._chunk_seq[track]
                placement = _Placement(
                    track, stream[: frames * frame], frames, segment.started_at, start, seq
                )
                ChunkReady.model_validate(self._event_fields(placement, sample_rate, channels))
                placements.append(placement)
        if placements:  # no audio starts no segment: an adapter waits for a started one's stop
            self._segment = segment
        for placement in placements:
            segment.samples[placement.track] += placement.frames
            self._chunk_seq[placement.track] += 1
        for track, rest_bytes in partials.items():
            held = self._partial.get(track)
            if held and not held.fits(sample_rate, channels):
                self._drop_partial("the format changed", track)
            self._partial.pop(track, None)
            if rest_bytes:
                self._partial[track] = _Partial(rest_bytes, sample_rate, channels)
        return placements

    def _drop_partial(self, reason: str, only: Track | None = None) -> None:
        for track in [only] if only else list(self._partial):
            partial = self._partial.pop(track, None)
            if partial is None:
                continue
            self.partial_bytes_dropped += len(partial.pcm)
            log.warning(
                "partial_frame_dropped",
                session_id=self.session_id,
                track=track,
                bytes_dropped=len(partial.pcm),
                frame_bytes=SAMPLE_WIDTH * partial.channels,
                reason=reason,
            )

    def _event_fields(
        self, chunk: _Placement, sample_rate: int, channels: int, **stored: Any
    ) -> dict[str, Any]:
        """The chunk's ``ChunkReady`` fields. Without ``stored`` (what the store answered: its
        uri, size and digest), with stand-ins for those and for the envelope, which is what
        the chunk is checked as before its write."""
        fields: dict[str, Any] = {
            "chunk_id": chunk_id(self.session_id, chunk.track, chunk.seq),
            "track": chunk.track,
            "chunk_seq": chunk.seq,
            "format": "wav",
            "sample_rate": sample_rate,
            "channels": channels,
            "start_sample": chunk.start,
            "num_samples": chunk.frames,
            "recording_started_at": chunk.anchor,
        }
        if stored:
            return fields | stored
        return fields | {
            "session_id": self.session_id,
            "bot_id": self.producer.bot_id,
            "seq": 0,
            "producer": _CHECKER,
            "uri": self._key(chunk),
            "byte_size": 0,
            "sha256": "0" * 64,
        }

    def _key(self, chunk: _Placement) -> str:
        folder = f"{session_folder(self.session_id)}/{chunk.anchor:%Y%m%dT%H%M%S%f}"
        return f"{folder}/{chunk.track}-{chunk.seq:06d}.wav"

    async def _write(self, chunk: _Placement, sample_rate: int, channels: int) -> None:
        refused = (
            "producer not running"
            if not self.producer.running
            else "the session was ended"
            if self.producer.has_ended(self.session_id)
            else None
        )
        if refused:
            # Its event would be dropped: the file would belong to no event. A session ends
            # before its last buffer when a pipeline finishes before its recording stops.
            self.chunks_dropped += 1
            log.error(
                "chunk_dropped",
                reason=refused,
                session_id=self.session_id,
                track=chunk.track,
                chunk_seq=chunk.seq,
            )
            return
        data = wav_bytes(chunk.pcm, sample_rate, channels)
        stored = await asyncio.to_thread(self.store.put, self._key(chunk), data)
        self.producer.chunk_ready(
            self.session_id,
            **self._event_fields(
                chunk,
                sample_rate,
                channels,
                uri=stored.uri,
                byte_size=stored.byte_size,
                sha256=stored.sha256,
            ),
        )


def _first_error(exc: ValueError) -> str:
    """A pydantic error's message without its location and link lines."""
    return exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
