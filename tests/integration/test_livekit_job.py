"""The README's LiveKit entrypoint, run as the worker runs a job: entrypoint, shutdown, cleanup."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import textwrap
import wave
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

import producers
from audio.stores import ChunkReader
from producers import TranscriptProducer
from queries import Reader
from queries.clips import ClipCutter
from queries.recording import turn_clip
from schemas import ChunkReady, SessionEnded, Topics, TurnStarted, TurnStopped
from tests.integration.reading import projected_completeness, read_events

pytest.importorskip("livekit.agents")

from livekit import rtc
from livekit.agents import Agent, AgentSession
from livekit.agents.job import JobContext
from livekit.agents.testing import fake_job_context

from examples.livekit_bot import ScriptedLLM
from producers.adapters.livekit import attach_livekit
from tests.integration.livekit_caller import Caller, Speech, run_job, voice_session

pytestmark = pytest.mark.integration

README = Path(__file__).parents[2] / "README.md"


def readme_livekit_entrypoint() -> str:
    """The Python block of the README's "Attach a bot" section that follows "LiveKit"."""
    section = README.read_text().split("## Attach a bot", 1)[1].split("\n## ", 1)[0]
    after = section.split("LiveKit Agents (the `livekit` extra)", 1)[1]
    block = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert block, "README: no python block after the LiveKit line of 'Attach a bot'"
    return block.group(1)


def _conversation() -> Caller:
    return Caller(
        [
            Speech(0.3, 1.2, "Where is my order?"),
            Speech(2.5, 3.3, "Thanks, that's all."),
        ]
    )


REPLIES = ["It shipped Monday.", "You're welcome."]


async def test_the_readme_entrypoint_stores_the_call_and_its_recording(
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clickhouse: Client,
) -> None:
    """The README's lines, verbatim, in a job: only the broker address differs."""
    made: list[TranscriptProducer] = []

    class TestBroker(TranscriptProducer):
        def __init__(self, _bootstrap: str, **kwargs: Any) -> None:
            super().__init__(kafka_bootstrap, topics=topics, spool_dir=tmp_path / "spool", **kwargs)
            made.append(self)

    monkeypatch.setattr(producers, "TranscriptProducer", TestBroker)
    monkeypatch.chdir(tmp_path)
    body = textwrap.indent(readme_livekit_entrypoint(), "    ")
    namespace: dict[str, Any] = {}
    exec(compile(f"async def readme(ctx, session, agent):\n{body}", str(README), "exec"), namespace)
    caller = _conversation()

    async def entrypoint(ctx: JobContext) -> None:
        session = voice_session(caller, list(REPLIES))
        await namespace["readme"](ctx, session, Agent(instructions="Help with orders."))

    ctx = await run_job(entrypoint, lasts_s=5.0)

    (producer,) = made
    assert not producer.running, "closed from the job's shutdown"
    assert (producer.stats.published, producer.stats.dropped, producer.stats.spooled) == (10, 0, 0)
    *turns, end = await read_events(kafka_bootstrap, topics.turn_events, 9)
    assert {e.session_id for e in turns} == {ctx.job.room.name}
    stops = [e for e in turns if isinstance(e, TurnStopped)]
    assert [(s.role, s.text) for s in stops] == [
        ("user", "Where is my order?"),
        ("assistant", "It shipped Monday."),
        ("user", "Thanks, that's all."),
        ("assistant", "You're welcome."),
    ]
    assert {e.turn_id for e in turns if isinstance(e, TurnStarted)} == {s.turn_id for s in stops}
    (chunk,) = await read_events(kafka_bootstrap, topics.audio_chunks, 1)
    _assert_kept_in(chunk, tmp_path / "tstore-chunks", ctx)
    assert isinstance(chunk, ChunkReady)
    assert isinstance(end, SessionEnded), "the job's shutdown ends the session"
    assert (end.seq, end.event_count) == (9, 10), "after the recording"
    assert (end.mixed_chunks, end.mixed_samples) == (1, chunk.num_samples)
    room = ctx.job.room.name
    completeness = await projected_completeness(kafka_bootstrap, topics, clickhouse, room)
    assert (completeness.state, completeness.complete, completeness.holes) == ("sealed", True, [])
    await _each_turn_plays_back(clickhouse, room, stops)


async def _each_turn_plays_back(clickhouse: Client, room: str, stops: list[TurnStopped]) -> None:
    """Each turn's clip is cut from the call's recording, its speaker's channel of the stereo
    OGG, as long as the turn, with no hole (the caller here is silent: only the cut is checked,
    the fidelity tests check sound)."""
    reader, cutter = Reader(clickhouse), ClipCutter(ChunkReader())
    for stop in stops:
        clip = await asyncio.to_thread(turn_clip, reader, cutter, room, stop.turn_id)
        assert clip.holes == {stop.role: []}, stop
        with wave.open(io.BytesIO(clip.wav)) as played:
            length_s = (stop.stopped_at - stop.started_at).total_seconds()
            assert played.getnchannels() == 1
            assert abs(played.getnframes() - length_s * played.getframerate()) <= 1, stop


def _assert_kept_in(chunk: Any, store: Path, ctx: JobContext) -> None:
    assert isinstance(chunk, ChunkReady)
    assert not ctx.session_directory.exists(), "the job deleted its temporary folder"
    copy = Path(chunk.uri.removeprefix("file://"))
    assert copy.is_relative_to(store.resolve()), chunk.uri
    data = copy.read_bytes()
    assert (chunk.format, chunk.channels, chunk.track) == ("ogg", 2, "mixed")
    assert (len(data), hashlib.sha256(data).hexdigest()) == (chunk.byte_size, chunk.sha256)
    assert chunk.num_samples >= 4 * chunk.sample_rate, "the whole call"


async def test_the_job_recording_is_copied_into_the_chunk_store_before_cleanup(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    caller = _conversation()
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="lk-job", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:

        async def entrypoint(ctx: JobContext) -> None:
            session = voice_session(caller, list(REPLIES))
            attach_livekit(producer, session, session_id="room-rec", job_context=ctx)
            await session.start(Agent(instructions="Help."), room=ctx.room, record=True)

        ctx = await run_job(entrypoint, lasts_s=5.0)
        assert producer.running, "a producer the caller started is the caller's to close"

    (chunk,) = await read_events(kafka_bootstrap, topics.audio_chunks, 1)
    assert chunk.session_id == "room-rec"
    _assert_kept_in(chunk, tmp_path / "tstore-chunks", ctx)


async def test_an_empty_session_id_before_the_room_connects_is_taken_from_the_job(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """``ctx.room.name`` is '' until the room is connected; the job knows its room from the
    start."""
    session: AgentSession[None] = AgentSession(llm=ScriptedLLM(["It shipped Monday."]))
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="lk-job", topics=topics, spool_dir=tmp_path
    ) as producer:
        with fake_job_context(room=rtc.Room(), job_id="job-7") as ctx:
            assert ctx.room.name == ""
            attach_livekit(producer, session, session_id=ctx.room.name, job_context=ctx)
            await session.start(Agent(instructions="Help with orders."))
            await session.run(user_input="Where is my order?")
            await session.aclose()

    events = await read_events(kafka_bootstrap, topics.turn_events, 3)
    assert len(events) == 3
    assert {e.session_id for e in events} == {ctx.job.room.name} != {""}
