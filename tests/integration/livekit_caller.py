"""A scripted caller and the components a LiveKit ``AgentSession`` runs on, built on livekit's
base classes, and a job run the way the worker runs one (entrypoint, shutdown, cleanup).

The caller says ``Speech`` segments at fixed times from the first microphone frame: the VAD
reports each segment's start and end, the STT its words ``stt_delay`` after the end (a segment
without words, a cough, gets no transcript). Replies come from ``ScriptedLLM``, are
spoken by ``SilentTTS`` (silence, ``word_s`` per word) and played by ``Speaker`` in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, stt, tts, utils, vad
from livekit.agents.ipc.job_proc_lazy_main import _JobProc, _ShutdownInfo
from livekit.agents.ipc.mock_room import create_mock_room
from livekit.agents.job import JobContext, JobExecutorType
from livekit.agents.language import LanguageCode
from livekit.agents.testing import fake_job_context
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.voice import io

from examples.livekit_bot import ScriptedLLM

MIC_RATE = 16_000


@dataclass(frozen=True)
class Speech:
    start: float
    end: float
    text: str = ""
    stt_delay: float = 0.2


@dataclass
class Caller:
    speeches: list[Speech]
    _t0: float | None = field(default=None, init=False)

    def now(self) -> float:
        """Seconds since the first microphone frame (the clock starts on first use)."""
        if self._t0 is None:
            self._t0 = time.monotonic()
        return time.monotonic() - self._t0

    async def until(self, t: float) -> None:
        await asyncio.sleep(max(0.0, t - self.now()))

    def upcoming(self, at: Callable[[Speech], float]) -> list[Speech]:
        """Speeches whose moment ``at`` is still ahead (a restarted stream skips the past)."""
        now = self.now()
        return [s for s in self.speeches if at(s) >= now]


class Microphone(io.AudioInput):
    """10 ms of silence at a time, in real time, so the VAD, STT and recorder run."""

    def __init__(self, caller: Caller) -> None:
        super().__init__(label="microphone")
        self.caller = caller

    async def __anext__(self) -> rtc.AudioFrame:
        self.caller.now()
        await asyncio.sleep(0.01)
        return rtc.AudioFrame.create(MIC_RATE, 1, MIC_RATE // 100)


class CallerVAD(vad.VAD):
    def __init__(self, caller: Caller) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=0.05))
        self.caller = caller

    def stream(self) -> vad.VADStream:
        return _CallerVADStream(self)


class _CallerVADStream(vad.VADStream):
    async def _main_task(self) -> None:
        assert isinstance(self._vad, CallerVAD)
        caller = self._vad.caller
        script = [
            (moment, _vad_event(kind, moment))
            for speech in caller.upcoming(lambda s: s.start)
            for moment, kind in ((speech.start, _SPEECH), (speech.end, _SILENCE))
        ]
        await _feed(caller, script, self._event_ch, self._input_ch)


_SPEECH = vad.VADEventType.START_OF_SPEECH
_SILENCE = vad.VADEventType.END_OF_SPEECH


def _vad_event(kind: vad.VADEventType, moment: float) -> vad.VADEvent:
    # No speech or silence duration: LiveKit backdates starts and ends by them.
    return vad.VADEvent(
        type=kind, samples_index=0, timestamp=moment, speech_duration=0.0,
        silence_duration=0.0, speaking=kind is _SPEECH,
    )  # fmt: skip


class CallerSTT(stt.STT[Any]):
    def __init__(self, caller: Caller) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))
        self.caller = caller

    async def _recognize_impl(self, *args: Any, **kwargs: Any) -> stt.SpeechEvent:
        raise NotImplementedError

    def stream(
        self,
        *,
        language: Any = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return _CallerSTTStream(stt=self, conn_options=conn_options)


class _CallerSTTStream(stt.RecognizeStream):
    async def _run(self) -> None:
        assert isinstance(self._stt, CallerSTT)
        caller = self._stt.caller
        await _feed(caller, self._script(caller), self._event_ch, self._input_ch)

    def _script(self, caller: Caller) -> list[tuple[float, stt.SpeechEvent]]:
        moments: list[tuple[float, stt.SpeechEvent]] = []
        for speech in caller.upcoming(lambda s: s.end + s.stt_delay):
            if speech.text:
                words = stt.SpeechData(
                    language=LanguageCode("en"), text=speech.text, confidence=0.9
                )
                final = stt.SpeechEvent(
                    type=stt.SpeechEventType.FINAL_TRANSCRIPT, alternatives=[words]
                )
                moments.append((speech.end + speech.stt_delay, final))
        return moments


_FINAL = stt.SpeechEventType.FINAL_TRANSCRIPT


async def _feed(
    caller: Caller, script: list[tuple[float, Any]], events: Any, audio: AsyncIterator[Any]
) -> None:
    """Send each event of ``script`` at its moment, reading the audio meanwhile."""
    drain = asyncio.create_task(_drain(audio))
    try:
        for moment, event in script:
            await caller.until(moment)
            events.send_nowait(event)
        await drain
    finally:
        drain.cancel()


async def _drain(audio: AsyncIterator[Any]) -> None:
    async for _ in audio:
        pass


class SilentTTS(tts.TTS[Any]):
    """Speaks silence, ``word_s`` seconds per word."""

    def __init__(self, word_s: float = 0.15) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True), sample_rate=24_000, num_channels=1
        )
        self.word_s = word_s

    def synthesize(self, text: str, *, conn_options: Any = None) -> tts.ChunkedStream:
        raise NotImplementedError

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.SynthesizeStream:
        return _SilentStream(tts=self, conn_options=conn_options)


class _SilentStream(tts.SynthesizeStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        assert isinstance(self._tts, SilentTTS)
        rate = self._tts.sample_rate
        output_emitter.initialize(
            request_id=utils.shortuuid("silent_"), sample_rate=rate, num_channels=1,
            mime_type="audio/pcm", stream=True,
        )  # fmt: skip
        words = 0
        async for data in self._input_ch:
            if isinstance(data, str):
                words += len(data.split())
                continue
            if not words:
                continue
            self._mark_started()
            output_emitter.start_segment(segment_id=utils.shortuuid("segment_"))
            output_emitter.push(b"\x00\x00" * int(rate * self._tts.word_s * words))
            output_emitter.end_segment()
            words = 0


class Speaker(io.AudioOutput):
    """Plays what it is given in real time, and says when it started and how far it got."""

    def __init__(self) -> None:
        super().__init__(label="speaker", capabilities=io.AudioOutputCapabilities(pause=False))
        self._started_at = 0.0
        self._pushed_s = 0.0
        self._finish: asyncio.TimerHandle | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._pushed_s:
            self._started_at = time.time()
            self.on_playback_started(created_at=self._started_at)
        self._pushed_s += frame.duration

    def flush(self) -> None:
        super().flush()
        if not self._pushed_s:
            return
        left = self._pushed_s - (time.time() - self._started_at)
        if self._finish:
            self._finish.cancel()
        self._finish = asyncio.get_running_loop().call_later(max(left, 0.0), self._finished)

    def _finished(self, *, interrupted: bool = False) -> None:
        played = min(self._pushed_s, time.time() - self._started_at)
        self._pushed_s = 0.0
        self.on_playback_finished(playback_position=played, interrupted=interrupted)

    def clear_buffer(self) -> None:
        if self._finish:
            self._finish.cancel()
            self._finish = None
        if self._pushed_s:
            self._finished(interrupted=True)


class _NoWorker:
    """The worker's end of the job's IPC channel: the messages go nowhere."""

    async def send(self, _message: Any) -> None:
        return None


async def run_job(
    entrypoint: Callable[[JobContext], Coroutine[Any, Any, None]],
    *,
    lasts_s: float,
    room: rtc.Room | None = None,
) -> JobContext:
    """Run ``entrypoint`` as the worker runs a job: the entrypoint, then after ``lasts_s`` (the
    room emptied) livekit's own shutdown (session close, shutdown callbacks) and cleanup,
    which deletes the job's temporary folder. The room is, unless given, the stand-in the
    worker gives jobs with no server (console mode), which looks connected."""
    room = room or create_mock_room()
    with fake_job_context(room=room) as ctx:
        job = _JobProc(
            lambda _proc: None,
            entrypoint,
            None,
            session_end_timeout=10,
            executor_type=JobExecutorType.THREAD,
        )
        job._job_ctx, job._room, job._client = ctx, room, _NoWorker()  # type: ignore[assignment]
        entry = asyncio.create_task(entrypoint(ctx))
        try:
            await asyncio.sleep(lasts_s)
            await job._shutdown_job(entry, _ShutdownInfo(False, "room disconnected"))
        finally:
            with contextlib.suppress(Exception):
                await ctx._on_cleanup()
        await entry
    return ctx


def voice_session(caller: Caller, replies: list[str]) -> AgentSession[None]:
    """A session that hears ``caller`` and answers with ``replies`` (VAD turn detection)."""
    session: AgentSession[None] = AgentSession(
        vad=CallerVAD(caller),
        stt=CallerSTT(caller),
        llm=ScriptedLLM(replies),
        tts=SilentTTS(),
        turn_handling={"turn_detection": "vad", "preemptive_generation": {"enabled": False}},
    )
    session.input.audio = Microphone(caller)
    session.output.audio = Speaker()
    return session
