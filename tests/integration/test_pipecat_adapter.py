"""A real Pipecat pipeline, offline, publishing through the real producer to a real topic."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path
from urllib.parse import urlparse

import pytest

from producers import TranscriptProducer
from producers.adapters.pipecat import attach_pipecat
from producers.chunks import LocalChunkStore
from schemas import ChunkReady, Topics, TurnStarted, TurnStopped
from tests.integration.reading import read_events

pipecat = pytest.importorskip("pipecat")

from pipecat.frames.frames import (  # noqa: E402
    AudioBufferStartRecordingFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import (  # noqa: E402
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.audio_buffer_processor import AudioBufferProcessor  # noqa: E402
from pipecat.tests.utils import SleepFrame, run_test  # noqa: E402
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies  # noqa: E402

pytestmark = pytest.mark.integration

RATE = 16000
USER_PCM = b"\x01\x00" * 1600  # 0.1 s
BOT_PCM = b"\x02\x00" * 3200  # 0.2 s


async def test_a_pipecat_conversation_arrives_as_turn_and_chunk_events(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    pair = LLMContextAggregatorPair(
        LLMContext(),
        user_params=LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies()),
    )
    audio = AudioBufferProcessor(sample_rate=RATE, buffer_size=3200)
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="pipecat-bot", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:
        attach_pipecat(
            producer,
            pair,
            session_id="call-1",
            audio_buffer=audio,
            chunk_store=LocalChunkStore(tmp_path / "chunks"),
            user_id="caller-7",
        )
        await run_test(
            Pipeline([pair.user(), audio, pair.assistant()]),
            frames_to_send=[
                AudioBufferStartRecordingFrame(),
                UserStartedSpeakingFrame(),
                InputAudioRawFrame(audio=USER_PCM, sample_rate=RATE, num_channels=1),
                TranscriptionFrame(text="Where is my order?", user_id="", timestamp=""),
                SleepFrame(0.1),
                UserStoppedSpeakingFrame(),
                SleepFrame(0.1),
                LLMFullResponseStartFrame(),
                LLMTextFrame("It shipped "),
                LLMTextFrame("Monday."),
                LLMFullResponseEndFrame(),
                OutputAudioRawFrame(audio=BOT_PCM, sample_rate=RATE, num_channels=1),
                SleepFrame(0.3),
                LLMFullResponseStartFrame(),
                LLMTextFrame("Anything else"),
                SleepFrame(0.1),
                InterruptionFrame(),
                SleepFrame(0.2),
            ],
        )

    turns = await read_events(kafka_bootstrap, topics.turn_events, 6)
    stops = [e for e in turns if isinstance(e, TurnStopped)]
    assert [(s.role, s.text, s.interrupted) for s in stops] == [
        ("user", "Where is my order?", False),
        ("assistant", "It shipped Monday.", False),
        ("assistant", "Anything else", True),
    ]
    assert stops[0].user_id == "caller-7"
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


def _assert_stored_as_described(chunk: ChunkReady) -> None:
    path = Path(urlparse(chunk.uri).path)
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == chunk.sha256
    assert len(data) == chunk.byte_size
    with wave.open(str(path)) as wav:
        assert wav.getnframes() == chunk.num_samples
        assert wav.getframerate() == chunk.sample_rate
