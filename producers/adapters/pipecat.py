"""Pipecat (pipecat-ai >= 1.14): record a bot's turns and audio with one call.

    async with TranscriptProducer("kafka:9092", bot_id="support") as producer:
        attach_pipecat(
            producer, context_aggregator, session_id=call_id, audio_buffer=audio, task=task
        )
        await runner.run(task)

Turn events come from the aggregators of ``LLMContextAggregatorPair``; message timestamps are
turn starts, so a stop takes the wall clock when its event fires. In realtime mode the user's
text is final only at ``on_user_turn_message_added``, so the stop waits for it. Audio comes
from ``AudioBufferProcessor.on_track_audio_data``: one WAV chunk per track per buffer, sample 0
of a recording being the first audio frame the buffer records after it starts. A user
turn takes the language of its last final ``TranscriptionFrame``, seen as the user aggregator
processes it (``on_before_process_frame``). The session's ``SessionEnded`` follows the end of
the pipeline or the client's disconnection, and the recording's last chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from audio.stores import ChunkWriter
from producers.chunks import RecordingChunker, default_chunk_store
from producers.producer import TranscriptProducer
from producers.turns import SessionTurns, guarded
from schemas.models import MAX_LANGUAGE_CHARS


def _started_at(timestamp: str | None) -> datetime | None:
    """Pipecat's ISO-8601 turn start, or None when it is empty or unreadable."""
    try:
        return datetime.fromisoformat(timestamp).astimezone(UTC) if timestamp else None
    except ValueError:
        return None


def _is_a(frame: Any, *names: str) -> bool:
    """Whether ``frame`` is of one of these Pipecat frame classes (or a subclass), by name:
    adapters import no framework module."""
    return any(cls.__name__ in names for cls in type(frame).__mro__)


def _language_tag(language: object) -> str | None:
    """Pipecat's ``Language`` (a str enum of BCP-47 tags); one the contract cannot hold is left
    out rather than losing the turn with it."""
    tag = str(language).strip()
    return tag if 0 < len(tag) <= MAX_LANGUAGE_CHARS else None


@dataclass
class _PendingUserStop:
    started_at: datetime | None
    stopped_at: datetime
    timed_out: bool


@dataclass
class PipecatRecorder:
    """The handlers ``attach_pipecat`` registers; kept for their state and for tests."""

    turns: SessionTurns
    chunker: RecordingChunker | None = None
    _timed_out: bool = False
    _pending: _PendingUserStop | None = field(default=None)
    _language: str | None = None
    """Of the latest final transcription since the last user turn stopped."""
    _anchoring: bool = False
    """A segment started and the buffer has recorded no audio of it yet."""
    _ending: bool = False
    _sealed: bool = False

    def on_before_process_frame(self, _aggregator: Any, frame: Any) -> None:
        """The user aggregator's frames: a final transcription carries the speech's language,
        which none of the turn events do."""
        if _is_a(frame, "TranscriptionFrame") and frame.language:
            self._language = _language_tag(frame.language)

    async def on_user_turn_started(self, _aggregator: Any, strategy: Any = None) -> None:
        self._timed_out = False
        self.turns.started("user", strategy=type(strategy).__name__ if strategy else None)

    async def on_user_turn_stop_timeout(self, _aggregator: Any) -> None:
        self._timed_out = True

    async def on_user_turn_stopped(self, _aggregator: Any, _strategy: Any, message: Any) -> None:
        stop = _PendingUserStop(_started_at(message.timestamp), datetime.now(UTC), self._timed_out)
        self._timed_out = False
        if message.content is None:
            self._pending = stop
        else:
            self._stop_user(stop, message.content)

    async def on_user_turn_message_added(self, _aggregator: Any, message: Any) -> None:
        if self._pending is not None:
            stop, self._pending = self._pending, None
            self._stop_user(stop, message.content)

    def _stop_user(self, stop: _PendingUserStop, text: str) -> None:
        language, self._language = self._language, None
        self.turns.stopped(
            "user",
            text=text,
            started_at=stop.started_at,
            stopped_at=stop.stopped_at,
            timed_out=stop.timed_out,
            language=language,
        )

    async def on_assistant_turn_started(self, _aggregator: Any) -> None:
        self.turns.started("assistant")

    async def on_assistant_turn_stopped(self, _aggregator: Any, message: Any) -> None:
        self.turns.stopped(
            "assistant",
            text=message.content or "",
            started_at=_started_at(message.timestamp),
            interrupted=bool(message.interrupted),
        )

    async def on_recording_started(self, processor: Any) -> None:
        if self.chunker:
            self.chunker.start_segment()
            self._anchoring = not processor.has_audio()

    def on_audio_buffer_frame(self, _processor: Any, frame: Any) -> None:
        """Sample 0 of a segment is the first audio frame the buffer records after it starts:
        that comes up to a frame's length (20 ms) after the start, whose handler runs as a
        task of its own, and anchoring at the start would put the whole recording that much
        early against the turns. A frame recorded before the start's handler ran leaves the
        anchor at the handler."""
        if self._anchoring and self.chunker and _is_a(frame, *_RECORDED) and frame.audio:
            self._anchoring = False
            self.chunker.start_segment()

    async def on_track_audio_data(
        self, _processor: Any, user: bytes, bot: bytes, sample_rate: int, _channels: int
    ) -> None:
        if self.chunker:
            await self.chunker.add_buffer({"user": user, "assistant": bot}, sample_rate)

    async def on_recording_stopped(self, _processor: Any) -> None:
        self._anchoring = False
        if self.chunker:
            self.chunker.stop_segment()
        if self._ending:
            await self._seal()

    async def end(self) -> None:
        """The call is over: publish the session's ``SessionEnded`` once, after its last
        chunk. The audio buffer hands its last buffer over as its recording stops, so while it
        records the end waits for that stop (a client that hangs up is followed by the
        pipeline's end, which stops it)."""
        self._ending = True
        if self.chunker is None or not self.chunker.recording:
            await self._seal()

    async def on_client_disconnected(self, _transport: Any, _client: Any = None) -> None:
        await self.end()

    async def on_pipeline_finished(self, _task: Any, _frame: Any = None) -> None:
        """Nothing follows the pipeline's end, whether or not the recording stopped."""
        self._ending = True
        await self._seal()

    async def _seal(self) -> None:
        if self._sealed:
            return
        self._sealed = True
        if self.chunker:
            await self.chunker.drain()
        self.turns.producer.end_session(self.turns.session_id)


_TURN_EVENTS = {
    "user": (
        "on_before_process_frame",
        "on_user_turn_started",
        "on_user_turn_stop_timeout",
        "on_user_turn_stopped",
        "on_user_turn_message_added",
    ),
    "assistant": ("on_assistant_turn_started", "on_assistant_turn_stopped"),
}
_AUDIO_EVENTS = {
    "on_recording_started": "on_recording_started",
    "on_before_process_frame": "on_audio_buffer_frame",
    "on_track_audio_data": "on_track_audio_data",
    "on_recording_stopped": "on_recording_stopped",
}
"""The audio buffer's events, and the recorder's handler of each."""
_RECORDED = ("InputAudioRawFrame", "OutputAudioRawFrame")
"""The frames whose audio ``AudioBufferProcessor`` records."""
_END_EVENTS = {"task": "on_pipeline_finished", "transport": "on_client_disconnected"}


def attach_pipecat(
    producer: TranscriptProducer,
    aggregators: Any,
    *,
    session_id: str,
    audio_buffer: Any = None,
    chunk_store: ChunkWriter | None = None,
    user_id: str | None = None,
    task: Any = None,
    transport: Any = None,
) -> PipecatRecorder:
    """Publish the turns of ``aggregators`` (an ``LLMContextAggregatorPair``) and the chunks of
    ``audio_buffer`` (an ``AudioBufferProcessor``, optional) for ``session_id``, and the
    session's end when ``task`` (the ``PipelineWorker``, or ``PipelineTask``) finishes or
    ``transport``'s client disconnects, whichever comes first; without either, call the
    recorder's ``end()``.

    Pipecat never fills ``user_id``; pass the caller's identity here. Chunks are written under
    ``TSTORE_CHUNK_STORE`` (a folder or a bucket's URL), else ``./tstore-chunks``, unless
    ``chunk_store`` says otherwise.
    """
    recorder = PipecatRecorder(SessionTurns(producer, session_id, user_id=user_id))
    sources = {"user": aggregators.user(), "assistant": aggregators.assistant()}
    for role, events in _TURN_EVENTS.items():
        for event in events:
            sources[role].add_event_handler(event, guarded(getattr(recorder, event)))
    if audio_buffer is not None:
        store = chunk_store or default_chunk_store()
        recorder.chunker = RecordingChunker(producer, session_id, store)
        for event, handler in _AUDIO_EVENTS.items():
            audio_buffer.add_event_handler(event, guarded(getattr(recorder, handler)))
    ends = {"task": task, "transport": transport}
    for source, event in _END_EVENTS.items():
        if ends[source] is not None:
            ends[source].add_event_handler(event, guarded(getattr(recorder, event)))
    return recorder
