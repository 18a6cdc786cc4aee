"""LiveKit Agents (livekit-agents >= 1.8): record a session's turns and its recording.

    producer = TranscriptProducer("kafka:9092", bot_id="support", framework="livekit")
    attach_livekit(producer, session, session_id=ctx.room.name, job_context=ctx)

Turn starts come from ``user_state_changed`` (its ``created_at`` is the VAD-backdated start of
speech) and ``agent_state_changed`` to ``speaking``; a turn ends with the
``conversation_item_added`` of its message, whose metrics carry the speaking times of voice turns
(text turns have only ``created_at``); a user turn takes the language of its final
``user_input_transcribed``. ``AgentSession.on`` takes plain functions only, which
the producer's calls are.

With ``record=True`` the session writes one stereo OGG (user left, agent right); given the job
context, its ``ChunkReady`` is published when the job shuts down. ``publish_recording`` does the
same for any recording, an Egress file for instance.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from producers.producer import TranscriptProducer
from producers.turns import SessionTurns, guarded
from schemas import ChunkReady, Role, Track

log = structlog.get_logger(__name__)

_ROLES: tuple[Role, ...] = ("user", "assistant")


def _at(epoch_s: float | None) -> datetime | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC)


class LiveKitRecorder:
    """The handlers ``attach_livekit`` registers; kept for their state and for tests."""

    def __init__(self, turns: SessionTurns) -> None:
        self.turns = turns
        self._user_speech_ended: datetime | None = None
        self._user_language: str | None = None

    def on_user_state_changed(self, event: Any) -> None:
        if event.new_state == "speaking":
            self._user_speech_ended = None
            self.turns.started("user", at=_at(event.created_at), strategy="vad")
        elif event.old_state == "speaking":
            self._user_speech_ended = _at(event.created_at)

    def on_user_input_transcribed(self, event: Any) -> None:
        """The STT's language of the final transcript goes on the user turn it ends in."""
        if event.is_final and event.language:
            self._user_language = str(event.language)

    def on_agent_state_changed(self, event: Any) -> None:
        if event.new_state == "speaking":
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
            stopped = stopped or self._user_speech_ended
            self._user_speech_ended = None
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


def attach_livekit(
    producer: TranscriptProducer,
    session: Any,
    *,
    session_id: str,
    user_id: str | None = None,
    job_context: Any = None,
) -> LiveKitRecorder:
    """Publish the turns of ``session`` (an ``AgentSession``) for ``session_id``.

    With ``job_context`` (the ``JobContext``), the session recording made with ``record=True``
    is published as a ``ChunkReady`` when the job shuts down.
    """
    recorder = LiveKitRecorder(SessionTurns(producer, session_id, user_id=user_id))
    for event in (
        "user_state_changed",
        "user_input_transcribed",
        "agent_state_changed",
        "conversation_item_added",
    ):
        session.on(event, guarded(getattr(recorder, f"on_{event}")))
    if job_context is not None:

        async def publish_report() -> None:
            report = job_context.make_session_report(session)
            if report.audio_recording_path and report.audio_recording_started_at:
                await publish_recording(
                    producer,
                    session_id,
                    Path(report.audio_recording_path),
                    recording_started_at=_at(report.audio_recording_started_at),
                )

        job_context.add_shutdown_callback(guarded(publish_report))
    return recorder


async def publish_recording(
    producer: TranscriptProducer,
    session_id: str,
    path: Path,
    *,
    recording_started_at: datetime | None,
    uri: str | None = None,
    track: Track = "mixed",
) -> ChunkReady:
    """Publish one ``ChunkReady`` for a whole recording file (session recording or Egress).

    Sample rate, channels and length are read from the file (OGG, WAV, MP3, FLAC... through
    mutagen); ``uri`` is where readers should fetch it, by default the local file.
    """
    from mutagen import File as AudioFile  # the livekit extra brings it

    def inspect() -> tuple[Any, bytes, str]:
        return AudioFile(path), path.read_bytes(), path.resolve().as_uri()

    info, data, local_uri = await asyncio.to_thread(inspect)
    if info is None or recording_started_at is None:
        raise ValueError(f"{path}: not a readable audio file, or no recording start time")
    rate = int(getattr(info.info, "sample_rate", 0) or 48_000)
    return producer.chunk_ready(
        session_id,
        chunk_id=f"{session_id}/{track}/recording-{recording_started_at:%Y%m%dT%H%M%S%f}",
        track=track,
        chunk_seq=0,
        uri=uri or local_uri,
        format=path.suffix.removeprefix(".").lower() or "unknown",
        sample_rate=rate,
        channels=int(info.info.channels),
        start_sample=0,
        num_samples=round(info.info.length * rate),
        recording_started_at=recording_started_at,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
