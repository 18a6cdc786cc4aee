"""A real Pipecat pipeline, offline, publishing through the real producer to a real topic."""

from __future__ import annotations

import hashlib
import threading
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlparse

import pytest
from clickhouse_connect.driver.client import Client

from audio.stores import ChunkWriter, StoredChunk, open_chunk_store
from producers import TranscriptProducer
from schemas import ChunkReady, SessionEnded, Topics, TurnStarted, TurnStopped
from tests.integration.reading import projected_completeness, read_events

pytest.importorskip("pipecat")

from pipecat.frames.frames import (
    AudioBufferStartRecordingFrame,
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
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.audio_buffer_processor import AudioBufferProcessor
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transcriptions.language import Language
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies

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
