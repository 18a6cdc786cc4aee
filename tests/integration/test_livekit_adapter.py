"""A real LiveKit AgentSession, offline (no room), publishing through the real producer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from producers import TranscriptProducer
from producers.adapters.livekit import attach_livekit, publish_recording
from producers.chunks import wav_bytes
from schemas import ChunkReady, Topics, TurnStarted, TurnStopped
from tests.integration.reading import read_events

pytest.importorskip("livekit.agents")

from livekit.agents import Agent, AgentSession, llm
from livekit.agents.llm import ChatChunk, ChoiceDelta
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

pytestmark = pytest.mark.integration


class ScriptedStream(llm.LLMStream):
    def __init__(self, owner: ScriptedLLM, reply: str, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self._reply = reply
        self._pause_s = owner.pause_s

    async def _run(self) -> None:
        for word in self._reply.split(" "):
            await asyncio.sleep(self._pause_s)
            self._event_ch.send_nowait(
                ChatChunk(id="scripted", delta=ChoiceDelta(role="assistant", content=f"{word} "))
            )


class ScriptedLLM(llm.LLM[Any]):
    """Answers with the next scripted reply, a word every ``pause_s``."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies = replies
        self.pause_s = 0.0

    def chat(
        self,
        *,
        chat_ctx: Any,
        tools: Any = None,
        conn_options: Any = DEFAULT_API_CONNECT_OPTIONS,
        **_: Any,
    ) -> ScriptedStream:
        return ScriptedStream(
            self,
            self.replies.pop(0),
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=conn_options,
        )


async def test_a_livekit_session_arrives_as_turn_events(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    scripted = ScriptedLLM(["It shipped Monday.", "Let me read you the whole tracking history"])
    session: AgentSession[None] = AgentSession(llm=scripted)
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="lk-bot", framework="livekit", topics=topics, spool_dir=tmp_path
    ) as producer:
        attach_livekit(producer, session, session_id="room-1", user_id="caller-7")
        await session.start(Agent(instructions="Help with orders."))
        await session.run(user_input="Where is my order?")
        scripted.pause_s = 0.2
        session.generate_reply(user_input="What route did it take?")
        await asyncio.sleep(0.5)
        await session.interrupt()
        await asyncio.sleep(0.3)
        await session.aclose()

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
