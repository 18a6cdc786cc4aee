"""A real Pipecat pipeline, offline, publishing through the real producer to a real topic."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt
import pytest
from clickhouse_connect.driver.client import Client

from audio.stores import ChunkReader, ChunkWriter, StoredChunk, open_chunk_store
from producers import TranscriptProducer
from producers.simulator import tone_hz
from queries.clips import ClipCutter
from queries.reader import Reader
from queries.recording import turn_clip
from schemas import ChunkReady, Role, SessionEnded, Topics, TurnStarted, TurnStopped
from tests.integration.audio_support import dominant_hz, samples_of, sounding
from tests.integration.reading import projected_completeness, read_events

pytest.importorskip("pipecat")

from pipecat.frames.frames import (
    AudioBufferStartRecordingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.audio_buffer_processor import AudioBufferProcessor
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transcriptions.language import Language
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from examples.pipecat_bot import RATE, run_bot
from producers.adapters.pipecat import PipecatRecorder, attach_pipecat

pytestmark = pytest.mark.integration


async def test_the_pipecat_example_bot_arrives_as_turn_and_chunk_events_and_a_sealed_session(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, clickhouse: Client
) -> None:
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="pipecat-bot", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:
        await run_bot(producer, "call-1", open_chunk_store(str(tmp_path / "chunks")))

    *turns, end = await read_events(kafka_bootstrap, topics.turn_events, 7)
    stops = [e for e in turns if isinstance(e, TurnStopped)]
    assert [(s.role, s.text, s.interrupted) for s in stops] == [
        ("user", "Where is my order?", False),
        ("assistant", "It shipped Monday.", False),
        ("assistant", "Anything else", True),
    ]
    assert stops[0].user_id == "caller-7"
    assert [s.language for s in stops] == ["en-US", None, None], "the transcription's language"
    starts = {e.turn_id: e for e in turns if isinstance(e, TurnStarted)}
    assert set(starts) == {s.turn_id for s in stops}
    for stop in stops:
        assert stop.started_at <= stop.stopped_at
    assert starts[stops[0].turn_id].detection_strategy == "ExternalUserTurnStartStrategy"

    chunks = await read_events(kafka_bootstrap, topics.audio_chunks, 2)
    assert sorted(e.seq for e in turns + chunks) == list(range(8)), "one seq per session event"
    assert all(isinstance(c, ChunkReady) for c in chunks)
    by_track = {c.track: c for c in chunks if isinstance(c, ChunkReady)}
    assert set(by_track) == {"user", "assistant"}
    for chunk in by_track.values():
        assert (chunk.start_sample, chunk.sample_rate, chunk.channels) == (0, RATE, 1)
        _assert_stored_as_described(chunk)

    assert isinstance(end, SessionEnded), "the session's end comes last, after its chunks"
    assert (end.seq, end.event_count) == (8, 9)
    declared = (end.user_chunks, end.user_samples, end.assistant_chunks, end.assistant_samples)
    assert declared == (1, by_track["user"].num_samples, 1, by_track["assistant"].num_samples)
    completeness = await projected_completeness(kafka_bootstrap, topics, clickhouse, "call-1")
    assert (completeness.state, completeness.complete, completeness.holes) == ("sealed", True, [])


def _external_turns(*, realtime_service_mode: bool = False) -> LLMContextAggregatorPair:
    """Aggregators whose user turns start and stop with the speaking frames sent."""
    return LLMContextAggregatorPair(
        LLMContext(),
        user_params=LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies()),
        realtime_service_mode=realtime_service_mode,
    )


@contextlib.asynccontextmanager
async def _recording(
    bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    session_id: str,
    pair: LLMContextAggregatorPair,
    audio_buffer: AudioBufferProcessor,
    task: PipelineWorker | None = None,
) -> AsyncIterator[None]:
    """A producer, with a session's turns and audio attached, for the block."""
    async with TranscriptProducer(
        bootstrap, bot_id="pipecat-bot", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:
        attach_pipecat(
            producer,
            pair,
            session_id=session_id,
            audio_buffer=audio_buffer,
            chunk_store=open_chunk_store(str(tmp_path / "chunks")),
            task=task,
        )
        yield


def _assert_stored_as_described(chunk: ChunkReady) -> None:
    path = Path(urlparse(chunk.uri).path)
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == chunk.sha256
    assert len(data) == chunk.byte_size
    with wave.open(str(path)) as wav:
        assert wav.getnframes() == chunk.num_samples
        assert wav.getframerate() == chunk.sample_rate


async def test_in_realtime_mode_the_user_text_comes_from_message_added(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    pair = _external_turns(realtime_service_mode=True)
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="realtime-bot", topics=topics, spool_dir=tmp_path
    ) as producer:
        attach_pipecat(producer, pair, session_id="call-rt")
        await run_test(
            Pipeline([pair.user(), pair.assistant()]),
            frames_to_send=[
                UserStartedSpeakingFrame(),
                TranscriptionFrame(
                    text="Where is my order?", user_id="", timestamp="", language=Language.DE
                ),
                SleepFrame(0.1),
                UserStoppedSpeakingFrame(),
                SleepFrame(0.1),
                LLMFullResponseStartFrame(),
                LLMTextFrame("It shipped."),
                LLMFullResponseEndFrame(),
                SleepFrame(0.2),
            ],
        )
    events = await read_events(kafka_bootstrap, topics.turn_events, 4)
    stops = [e for e in events if isinstance(e, TurnStopped)]
    assert {(s.role, s.text, s.language) for s in stops} == {
        ("user", "Where is my order?", "de"),
        ("assistant", "It shipped.", None),
    }


async def _record_two_buffers(
    producer: TranscriptProducer,
    session_id: str,
    store: ChunkWriter,
    on_recording_stopped: Callable[[object], Awaitable[None]] | None = None,
    on_track_audio_data: Callable[..., Awaitable[None]] | None = None,
) -> PipecatRecorder:
    """A user turn, and a real ``AudioBufferProcessor`` handing over two buffers: one when it
    fills, one as the recording stops at the pipeline's end. Handlers given are added after
    the adapter's."""
    pair = _external_turns()
    audio_buffer = AudioBufferProcessor(sample_rate=RATE, buffer_size=3200)
    recorder = attach_pipecat(
        producer, pair, session_id=session_id, audio_buffer=audio_buffer, chunk_store=store
    )
    for event, handler in (
        ("on_recording_stopped", on_recording_stopped),
        ("on_track_audio_data", on_track_audio_data),
    ):
        if handler is not None:
            audio_buffer.add_event_handler(event, handler)
    await run_test(
        Pipeline([audio_buffer, pair.user(), pair.assistant()]),
        frames_to_send=[
            AudioBufferStartRecordingFrame(),
            SleepFrame(0.05),  # audio frames are system frames: they overtake the start
            UserStartedSpeakingFrame(),
            InputAudioRawFrame(audio=b"\x01\x00" * 1600, sample_rate=RATE, num_channels=1),
            TranscriptionFrame(text="Hello?", user_id="", timestamp=""),
            SleepFrame(0.05),
            UserStoppedSpeakingFrame(),
            SleepFrame(0.05),
            OutputAudioRawFrame(audio=b"\x02\x00" * 800, sample_rate=RATE, num_channels=1),
        ],
    )
    return recorder


async def test_sample_0_of_a_recording_is_its_first_audio_frame(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """Pipecat's buffer begins with the first audio frame after the recording starts, however
    long after: a bot often starts recording as its client connects, before audio flows.
    Anchored at the start instead, the whole recording lay that much early against the
    turns."""
    audio_buffer = AudioBufferProcessor(sample_rate=RATE, buffer_size=3200)
    first_audio: list[datetime] = []

    def note_first_audio(_processor: object, frame: Frame) -> None:
        if isinstance(frame, InputAudioRawFrame) and not first_audio:
            first_audio.append(datetime.now(UTC))

    pair = _external_turns()
    async with _recording(kafka_bootstrap, topics, tmp_path, "call-anchor", pair, audio_buffer):
        audio_buffer.add_event_handler("on_before_process_frame", note_first_audio)
        await run_test(
            Pipeline([audio_buffer, pair.user(), pair.assistant()]),
            frames_to_send=[
                AudioBufferStartRecordingFrame(),
                SleepFrame(0.3),
                InputAudioRawFrame(audio=b"\x01\x00" * 1600, sample_rate=RATE, num_channels=1),
            ],
        )
    chunks = await read_events(kafka_bootstrap, topics.audio_chunks, 2)
    for chunk in chunks:
        assert isinstance(chunk, ChunkReady)
        assert abs(chunk.recording_started_at - first_audio[0]) < timedelta(milliseconds=10)


class _StoreOpenedByStop:
    """A local chunk store whose writes wait until the recording-stopped handler has run: the
    order in which Pipecat's separate handler tasks interleave when a write is slow."""

    def __init__(self, root: Path) -> None:
        self.local = open_chunk_store(str(root))
        self.stopped = threading.Event()

    def put(self, key: str, data: bytes) -> StoredChunk:
        if not self.stopped.wait(timeout=30):
            raise RuntimeError("the recording never stopped")
        return self.local.put(key, data)

    async def on_recording_stopped(self, _processor: object) -> None:
        self.stopped.set()


async def test_a_buffer_stays_in_its_segment_when_the_recording_stops_during_its_write(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    store = _StoreOpenedByStop(tmp_path / "chunks")
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="pipecat-bot", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:
        await _record_two_buffers(producer, "call-seg", store, store.on_recording_stopped)

    events = await read_events(kafka_bootstrap, topics.audio_chunks, 4)
    chunks = [c for c in events if isinstance(c, ChunkReady)]
    assert len(chunks) == 4
    assert len({c.recording_started_at for c in chunks}) == 1, "one segment"
    assert len({Path(urlparse(c.uri).path).parent for c in chunks}) == 1, "one folder"
    placed = {
        track: [
            (c.start_sample, c.num_samples)
            for c in sorted(chunks, key=lambda c: c.chunk_seq)
            if c.track == track
        ]
        for track in ("user", "assistant")
    }
    # Pipecat hands both tracks of a buffer over aligned: the same samples of the recording.
    assert placed["user"] == placed["assistant"]
    (first, first_length), (second, _) = placed["user"]
    assert (first, second) == (0, first_length), "sample offsets continue"


async def test_a_client_hanging_up_while_recording_ends_the_session_after_its_last_chunk(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, clickhouse: Client
) -> None:
    """The end waits for the recording to stop: the audio buffer hands its last buffer over
    then, after the client is gone."""
    recorders: list[PipecatRecorder] = []

    async def hang_up(*_: object) -> None:
        await recorders[0].on_client_disconnected(None)

    async with TranscriptProducer(
        kafka_bootstrap, bot_id="pipecat-bot", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:
        recorders.append(
            await _record_two_buffers(
                producer,
                "call-hang-up",
                open_chunk_store(str(tmp_path / "chunks")),
                on_track_audio_data=hang_up,
            )
        )
        await recorders[0].on_client_disconnected(None)  # told twice: published once

    chunks = await read_events(kafka_bootstrap, topics.audio_chunks, 4)
    *_, end = await read_events(kafka_bootstrap, topics.turn_events, 3)
    assert isinstance(end, SessionEnded)
    assert (end.seq, end.event_count) == (6, 7), "after the turn's two events and four chunks"
    samples = sum(c.num_samples for c in chunks if isinstance(c, ChunkReady))
    assert (end.user_chunks, end.assistant_chunks) == (2, 2)
    assert end.user_samples + end.assistant_samples == samples
    completeness = await projected_completeness(kafka_bootstrap, topics, clickhouse, "call-hang-up")
    assert (completeness.state, completeness.holes) == ("sealed", [])


TICK_S = 0.02
"""A transport's audio frame: the microphone's every 20 ms, silence or not."""


@dataclass(frozen=True)
class _Spoken:
    role: Role
    text: str
    first_tick: int
    ticks: int

    @property
    def end_tick(self) -> int:
        return self.first_tick + self.ticks


PACED_CALL = (
    _Spoken("user", "Where is my order?", 20, 40),
    _Spoken("assistant", "It shipped Monday.", 75, 50),
    _Spoken("user", "And the invoice?", 140, 30),
    _Spoken("assistant", "It is in your email.", 185, 40),
)
"""Four turns of their own tones (``tone_hz`` of their index), with silences between."""
TRANSCRIPT_LEAD = 5
"""Ticks before the end of speech that a streaming STT's final transcript comes. One that
comes after the stop makes Pipecat end the turn half a second later (its external stop
strategy's wait for more text), and the clip holds that half second of silence too."""
PAD_MS = 200
"""Each clip is cut with this much of the call before and after its turn, so that sound
starting late or ending early would show."""
EDGE_S = 0.06
"""How far a turn's sound may start or end from where its clip says: a frame of
``sounding``'s resolution, and two for the event loop on a busy machine (measured here: at
most 21 ms). The fidelity tests hold simulated calls to one frame."""


def _frames_at(tick: int) -> list[Frame]:
    """What a transport, an STT and a TTS push into the pipeline at ``tick``."""
    frames: list[Frame] = []
    user_audio = np.zeros(round(TICK_S * RATE), dtype="<i2")
    for index, spoken in enumerate(PACED_CALL):
        sounding = spoken.first_tick <= tick < spoken.end_tick
        tone = _tone(index, tick) if sounding else None
        if spoken.role == "user":
            if tick == spoken.first_tick:
                frames.append(UserStartedSpeakingFrame())
            if tick == spoken.end_tick - TRANSCRIPT_LEAD:
                frames.append(TranscriptionFrame(text=spoken.text, user_id="", timestamp=""))
            if tick == spoken.end_tick:
                frames.append(UserStoppedSpeakingFrame())
            if tone is not None:
                user_audio = tone
            continue
        if tick == spoken.first_tick:
            frames += [
                LLMFullResponseStartFrame(),
                LLMTextFrame(spoken.text),
                BotStartedSpeakingFrame(),
            ]
        if tone is not None:
            frames.append(_audio(OutputAudioRawFrame, tone))
        if tick == spoken.end_tick:
            frames += [BotStoppedSpeakingFrame(), LLMFullResponseEndFrame()]
    return [_audio(InputAudioRawFrame, user_audio), *frames]


def _tone(index: int, tick: int) -> npt.NDArray[np.int16]:
    per_tick = round(TICK_S * RATE)
    n = np.arange(tick * per_tick, (tick + 1) * per_tick)
    return (8000 * np.sin(2 * np.pi * tone_hz(index) * n / RATE)).astype("<i2")


def _audio(kind: Callable[..., Frame], samples: npt.NDArray[np.int16]) -> Frame:
    return kind(audio=samples.tobytes(), sample_rate=RATE, num_channels=1)


async def _speak_in_real_time(worker: PipelineWorker) -> None:
    """Every tick's frames at its time from the start (late ticks catch up rather than push
    the rest of the call later, as a transport's clock does), then the end of the call."""
    started = asyncio.Event()
    worker.add_event_handler("on_pipeline_started", lambda *_: started.set())
    await started.wait()
    await worker.queue_frame(AudioBufferStartRecordingFrame())
    begin = time.monotonic()
    for tick in range(PACED_CALL[-1].end_tick + PAD_MS // 10):
        await asyncio.sleep(max(0.0, begin + tick * TICK_S - time.monotonic()))
        await worker.queue_frames(_frames_at(tick))
    await worker.queue_frame(EndFrame())


async def test_a_call_in_real_time_plays_back_turn_by_turn(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, clickhouse: Client
) -> None:
    """Frames pushed at a transport's pace, each turn a tone of its own: every turn's clip,
    cut from the chunks of Pipecat's audio buffer by the turn's times, is that tone from edge
    to edge."""
    pair = _external_turns()
    audio_buffer = AudioBufferProcessor(sample_rate=RATE, buffer_size=RATE * 2)
    worker = PipelineWorker(
        Pipeline([pair.user(), audio_buffer, pair.assistant()]), cancel_on_idle_timeout=False
    )
    async with _recording(
        kafka_bootstrap, topics, tmp_path, "call-paced", pair, audio_buffer, task=worker
    ):
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await asyncio.gather(runner.run(), _speak_in_real_time(worker))

    events = await read_events(kafka_bootstrap, topics.turn_events, 2 * len(PACED_CALL) + 1)
    stops = [e for e in events if isinstance(e, TurnStopped)]
    assert [(s.role, s.text) for s in stops] == [(s.role, s.text) for s in PACED_CALL]
    completeness = await projected_completeness(kafka_bootstrap, topics, clickhouse, "call-paced")
    assert (completeness.state, completeness.holes) == ("sealed", [])
    reader, cutter = Reader(clickhouse), ClipCutter(ChunkReader())
    for index, stop in enumerate(stops):
        clip = await asyncio.to_thread(
            turn_clip, reader, cutter, "call-paced", stop.turn_id, pad_ms=PAD_MS
        )
        assert clip.holes == {stop.role: []}, stop
        rate, samples = samples_of(clip.wav)
        assert abs(dominant_hz(samples[:, 0], rate) - tone_hz(index)) < 5, stop
        first, last = sounding(samples[:, 0], rate)
        pad_s, length_s = PAD_MS / 1000, len(samples) / rate
        assert abs(first - pad_s) <= EDGE_S, (stop, first)
        assert abs(length_s - pad_s - last) <= EDGE_S, (stop, length_s - last)
