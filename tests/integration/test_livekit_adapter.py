"""A real LiveKit AgentSession, offline (no room), publishing through the real producer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from producers import TranscriptProducer
from producers.adapters.livekit import publish_recording
from producers.chunks import wav_bytes
from schemas import ChunkReady, Topics, TurnStarted, TurnStopped
from tests.integration.reading import read_events

pytest.importorskip("livekit.agents")

from examples.livekit_bot import run_bot

pytestmark = pytest.mark.integration


async def test_the_livekit_example_bot_arrives_as_turn_events(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="lk-bot", framework="livekit", topics=topics, spool_dir=tmp_path
    ) as producer:
        await run_bot(producer, "room-1")

    events = await read_events(kafka_bootstrap, topics.turn_events, 6)
    stops = [e for e in events if isinstance(e, TurnStopped)]
    assert [(s.role, s.interrupted) for s in stops] == [
        ("user", False),
        ("assistant", False),
        ("user", False),
        ("assistant", True),
    ]
    assert [s.text for s in stops[:3]] == [
        "Where is my order?",
        "It shipped Monday.",
        "What route did it take?",
    ]
    assert "Let me" in stops[3].text
    assert stops[0].user_id == "caller-7"
    starts = {e.turn_id: e for e in events if isinstance(e, TurnStarted)}
    assistant_turns = [s for s in stops if s.role == "assistant"]
    assert all(s.turn_id in starts for s in assistant_turns), "agent_state_changed opened them"
    assert all(s.started_at <= s.stopped_at for s in stops)
    interrupted = assistant_turns[1]
    assert interrupted.duration_ms >= 150, "speaking times come from the message metrics"


def _write_recording(path: Path, seconds: float, rate: int) -> None:
    path.write_bytes(wav_bytes(b"\x00\x00" * 2 * int(seconds * rate), rate, channels=2))


async def test_a_recording_file_is_published_as_one_chunk(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    recording = tmp_path / "session.wav"
    await asyncio.to_thread(_write_recording, recording, 1.5, 48_000)
    started = datetime(2026, 11, 21, 12, tzinfo=UTC)
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="lk-bot", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:
        await publish_recording(producer, "room-2", recording, recording_started_at=started)
    (chunk,) = await read_events(kafka_bootstrap, topics.audio_chunks, 1)
    assert isinstance(chunk, ChunkReady)
    assert (chunk.track, chunk.format, chunk.channels) == ("mixed", "wav", 2)
    assert (chunk.sample_rate, chunk.num_samples) == (48_000, 72_000)
    assert chunk.recording_started_at == started
    assert chunk.uri == recording.resolve().as_uri()
