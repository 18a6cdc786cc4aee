"""LiveKit Agents (livekit-agents >= 1.8): record a session's turns and its recording.

In the job's entrypoint::

    producer = TranscriptProducer("kafka:9092", bot_id="support", framework="livekit")
    attach_livekit(producer, session, job_context=ctx)
    await session.start(agent, room=ctx.room, record=True)

``session.start`` returns as soon as the session runs, and the call goes on after the
entrypoint has returned, so the producer lives as long as the job, not as a block of the
entrypoint: given the job context, ``attach_livekit`` holds the producer for the job
(``TranscriptProducer.hold``: started if it is not running) and lets go of it from the job's
shutdown, after the recording is published; the last job to let go of a producer that a hold
started closes it, and one its owner started is left to the owner. The session id is
the job's room name (``ctx.room.name`` is empty until the room is connected).

Turn rules:

- A user turn begins at the VAD start of speech (``user_state_changed`` to ``speaking``) of
  the first segment of an utterance, and is published (``TurnStarted``, backdated to that
  start) when its first words are transcribed (``user_input_transcribed``, interim or
  final). It ends with the ``conversation_item_added`` of its message, whose
  ``stopped_speaking_at`` is its end; its start stays the adapter's own, because LiveKit's
  ``started_speaking_at`` can be anchored at an earlier noise.
- Speech that resumes before the turn's message arrives continues the turn (an utterance
  split by a pause is one turn), except after a segment with no words followed by more than
  ``CONTINUATION_S`` of silence: such speech (a cough, a noise) was not a turn and is dropped
  without any event; the next speech starts the turn.
- An assistant turn starts when the agent starts speaking (``agent_state_changed``) and ends
  with its message, taking the speaking times of the message metrics (text turns have only
  ``created_at``). Speaking again before a message continues the same turn.
- When the session closes, a turn still open is stopped: a user turn with the text heard so
  far, an assistant turn as interrupted; user speech without words is dropped.

A user turn takes the language of its final ``user_input_transcribed``. The session's
``SessionEnded`` is published once: at the job's shutdown, after the recording, given the job
context; at the session's close otherwise. ``AgentSession.on``
takes plain functions only, which the producer's calls are.

With ``record=True`` the session writes one stereo OGG (user left, agent right) in the job's
temporary folder, which the job deletes at cleanup: given the job context, it is copied into
the chunk store (``chunk_store``, else ``TSTORE_CHUNK_STORE``, else ``./tstore-chunks``) from
the job's shutdown, and its ``ChunkReady`` points there. ``publish_recording`` does the same for any
recording, an Egress file for instance.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import soundfile
import structlog

from audio.stores import ChunkReader, ChunkWriter
from producers.chunks import chunk_id, default_chunk_store, session_folder
from producers.producer import TranscriptProducer
from producers.turns import SessionTurns, guarded
from schemas import ChunkReady, Role, Track

log = structlog.get_logger(__name__)

_ROLES: tuple[Role, ...] = ("user", "assistant")

CONTINUATION_S = 1.0
"""Silence after speech with no words beyond which that speech is dropped as noise."""


def _at(epoch_s: float | None) -> datetime | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC)


@dataclass
class _Utterance:
    """What the user is saying: speech segments since the last user message."""

    started_at: datetime
    ended_at: datetime | None = None
    """End of its last segment; None while the user speaks."""
    heard: bool = False
    """Words were transcribed: it is a turn, and its ``TurnStarted`` is published."""
    finals: list[str] = field(default_factory=list)


class LiveKitRecorder:
    """The handlers ``attach_livekit`` registers; kept for their state and for tests."""

    def __init__(self, turns: SessionTurns, *, end_at_close: bool = True) -> None:
        self.turns = turns
        self.end_at_close = end_at_close
        """Whether the session's close ends it; a job's shutdown does otherwise, after the
        recording is published."""
        self._utterance: _Utterance | None = None
        self._user_language: str | None = None
        self._ended = False

    def on_user_state_changed(self, event: Any) -> None:
        at = _at(event.created_at) or datetime.now(UTC)
        if event.new_state == "speaking":
            self._speech_started(at)
        elif event.old_state == "speaking" and self._utterance is not None:
            self._utterance.ended_at = at

    def _speech_started(self, at: datetime) -> None:
        current = self._utterance
        if current is None or self._is_noise(current, at):
            self._drop_noise(current)
            self._utterance = _Utterance(at)
        else:
            current.ended_at = None

    def _drop_noise(self, utterance: _Utterance | None) -> None:
        if utterance is not None:
            log.info(
                "user_speech_dropped",
                session_id=self.turns.session_id,
                started_at=utterance.started_at.isoformat(),
                reason="no words",
            )

    @staticmethod
    def _is_noise(utterance: _Utterance, resumed_at: datetime) -> bool:
        return (
            not utterance.heard
            and utterance.ended_at is not None
            and resumed_at - utterance.ended_at > timedelta(seconds=CONTINUATION_S)
        )

    def on_user_input_transcribed(self, event: Any) -> None:
        """Words open the user turn; the final transcript's language goes on it."""
        if event.is_final and event.language:
            self._user_language = str(event.language)
        text = (event.transcript or "").strip()
        utterance = self._utterance
        if not text or utterance is None:
            return
        if event.is_final:
            utterance.finals.append(text)
        self._open_user_turn(utterance)

    def _open_user_turn(self, utterance: _Utterance) -> None:
        if not utterance.heard:
            utterance.heard = True
            self.turns.started("user", at=utterance.started_at, strategy="vad")

    def on_agent_state_changed(self, event: Any) -> None:
        if event.new_state == "speaking" and self.turns.open_turn("assistant") is None:
            self.turns.started("assistant", at=_at(event.created_at))

    def on_conversation_item_added(self, event: Any) -> None:
        item = event.item
        if getattr(item, "type", None) != "message" or item.role not in _ROLES:
            return
        role: Role = item.role
        metrics = item.metrics or {}
        created = _at(item.created_at)
        started = _at(metrics.get("started_speaking_at"))
        stopped = _at(metrics.get("stopped_speaking_at"))
        language = None
        if role == "user":
            utterance, self._utterance = self._utterance, None
            if utterance is not None and self._is_noise(utterance, created or datetime.now(UTC)):
                self._drop_noise(utterance)  # a message that came without speech (typed, say)
                utterance = None
            if utterance is not None:
                self._open_user_turn(utterance)
                started = utterance.started_at
                stopped = stopped or utterance.ended_at
            language, self._user_language = self._user_language, None
        opened = self.turns.open_turn(role)
        started = started or (opened.started_at if opened else created) or datetime.now(UTC)
        self.turns.stopped(
            role,
            text=(item.text_content or "").strip(),
            started_at=started,
            # The framework's clocks differ (a message is created before it is spoken): a stop
            # is never recorded before its start.
            stopped_at=max(stopped or created or started, started),
            interrupted=bool(item.interrupted),
            language=language,
        )

    def on_close(self, event: Any) -> None:
        """Stop what the session leaves open; user speech that got no words is dropped."""
        self._stop_open_turns(_at(event.created_at) or datetime.now(UTC))
        if self.end_at_close:
            self.end()

    def end(self) -> None:
        """The session is over: stop its open turns, then publish its ``SessionEnded``, once."""
        if self._ended:
            return
        self._ended = True
        self._stop_open_turns(datetime.now(UTC))
        self.turns.producer.end_session(self.turns.session_id)

    def _stop_open_turns(self, closed_at: datetime) -> None:
        utterance, self._utterance = self._utterance, None
        if utterance is not None and utterance.heard:
            language, self._user_language = self._user_language, None
            self.turns.stopped(
                "user",
                text=" ".join(utterance.finals),
                started_at=utterance.started_at,
                stopped_at=max(utterance.ended_at or closed_at, utterance.started_at),
                language=language,
            )
        opened = self.turns.open_turn("assistant")
        if opened is not None:
            self.turns.stopped(
                "assistant",
                text="",
                started_at=opened.started_at,
                stopped_at=max(closed_at, opened.started_at),
                interrupted=True,
            )


_SESSION_EVENTS = (
    "user_state_changed",
    "user_input_transcribed",
    "agent_state_changed",
    "conversation_item_added",
    "close",
)


def attach_livekit(
    producer: TranscriptProducer,
    session: Any,
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    job_context: Any = None,
    chunk_store: ChunkWriter | None = None,
) -> LiveKitRecorder:
    """Publish the turns of ``session`` (an ``AgentSession``) and, once, its end.

    ``session_id`` defaults to the room of ``job_context`` (the ``JobContext``); an empty one
    (``ctx.room.name`` before the room is connected) is taken from the job too. With
    ``job_context``, the producer is held for the job and let go at its shutdown, and the
    ``record=True`` recording is copied into ``chunk_store`` and published as a ``ChunkReady``
    there before the job deletes it; the session's ``SessionEnded`` follows it. Without, the
    session's close ends it.
    """
    if not session_id and job_context is not None:
        session_id = job_context.job.room.name or job_context.room.name
    if not session_id:
        raise ValueError("attach_livekit needs a session_id, or the job_context of a room job")
    recorder = LiveKitRecorder(
        SessionTurns(producer, session_id, user_id=user_id), end_at_close=job_context is None
    )
    for event in _SESSION_EVENTS:
        session.on(event, guarded(getattr(recorder, f"on_{event}")))
    if job_context is not None:
        producer.hold()
        store = chunk_store or default_chunk_store()

        async def publish_report() -> None:
            report = job_context.make_session_report(session)
            if report.audio_recording_path and report.audio_recording_started_at:
                await publish_recording(
                    producer,
                    session_id,
                    Path(report.audio_recording_path),
                    recording_started_at=_at(report.audio_recording_started_at),
                    store=store,
                )

        async def on_job_shutdown() -> None:
            try:
                await publish_report()
            finally:
                recorder.end()
                await producer.release()

        job_context.add_shutdown_callback(guarded(on_job_shutdown))
    return recorder


def recording_seq(recording_started_at: datetime) -> int:
    """A whole recording's ``chunk_seq``: its start in microseconds since the epoch (UTC).

    Recordings of a session's track sort by start and never share a row, unless they began
    in the same microsecond; one recording published twice is stored once.
    """
    return (recording_started_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


async def publish_recording(
    producer: TranscriptProducer,
    session_id: str,
    path: Path | str,
    *,
    recording_started_at: datetime | None,
    uri: str | None = None,
    track: Track = "mixed",
    store: ChunkWriter | None = None,
) -> ChunkReady:
    """Publish one ``ChunkReady`` for a whole recording (session recording or Egress file).

    ``path`` is a local file, or the URL of an object already in a store (``s3://``,
    ``gs://``, ``az://``, ``file://``: an Egress file in its bucket), which is indexed where it
    lies, read once for its header and digest. Sample rate, channels and length are read from
    the audio (OGG, WAV, MP3, FLAC... through mutagen). With ``store`` a local file is copied
    there and the event points at the copy; otherwise ``uri`` is where readers should fetch
    it, by default the local file. Every recording of a session keeps its own row:
    ``chunk_seq`` is ``recording_seq`` of its start, and ``chunk_id`` names the track and the
    start in UTC.
    """
    if recording_started_at is None or recording_started_at.tzinfo is None:
        raise ValueError(f"{path}: the recording start must be an aware datetime")
    if store is not None and uri is not None:
        raise ValueError("publish_recording takes a store or a uri, not both")
    if isinstance(path, str) and (store is not None or uri is not None):
        raise ValueError(f"{path}: a recording in a store is indexed where it lies")
    started = recording_started_at.astimezone(UTC)
    name = PurePosixPath(urlsplit(path).path) if isinstance(path, str) else path
    fmt = name.suffix.removeprefix(".").lower() or "unknown"
    stamp = f"{started:%Y%m%dT%H%M%S%f}Z"

    def inspect() -> tuple[_Audio, int, str, str]:
        data = ChunkReader().read_object(path) if isinstance(path, str) else path.read_bytes()
        audio = _audio_of(data, str(path))
        if store is None:
            where = path if isinstance(path, str) else uri or path.resolve().as_uri()
            return audio, len(data), hashlib.sha256(data).hexdigest(), where
        stored = store.put(f"{session_folder(session_id)}/recordings/{stamp}-{track}.{fmt}", data)
        return audio, stored.byte_size, stored.sha256, stored.uri

    (rate, channels, samples), byte_size, sha256, location = await asyncio.to_thread(inspect)
    return producer.chunk_ready(
        session_id,
        chunk_id=chunk_id(session_id, track, f"recording-{stamp}"),
        track=track,
        chunk_seq=recording_seq(started),
        uri=location,
        format=fmt,
        sample_rate=rate,
        channels=channels,
        start_sample=0,
        num_samples=samples,
        recording_started_at=started,
        byte_size=byte_size,
        sha256=sha256,
    )


_Audio = tuple[int, int, int]
"""Sample rate, channels, samples."""


def _audio_of(data: bytes, name: str) -> _Audio:
    """What a recording holds, as the clips will decode it: libsndfile (``soundfile``) for
    what it reads (an Opus file's rate is its input rate there, which mutagen does not give),
    mutagen for the rest."""
    try:
        found = soundfile.info(io.BytesIO(data))
        return int(found.samplerate), int(found.channels), int(found.frames)
    except (soundfile.LibsndfileError, RuntimeError):
        pass
    from mutagen import File as AudioFile  # the livekit extra brings it

    info = AudioFile(io.BytesIO(data))
    if info is None:
        raise ValueError(f"{name}: not a readable audio file")
    rate = int(getattr(info.info, "sample_rate", 0) or 48_000)
    return rate, int(info.info.channels), round(info.info.length * rate)
