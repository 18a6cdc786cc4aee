"""A real LiveKit AgentSession, offline (no room), publishing through the real producer."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from audio.wav import wav_bytes
from consumers.projector import Projector
from consumers.storage.clickhouse import Store
from producers import TranscriptProducer
from producers.adapters.livekit import attach_livekit, publish_recording
from schemas import ChunkReady, SessionEnded, Topics, TurnStarted, TurnStopped
from schemas.models import MAX_ID_CHARS
from tests.integration.reading import projected_completeness, read_events
from tstore.devs3 import DevS3

pytest.importorskip("livekit.agents")

from livekit import rtc
from livekit.agents import Agent, AgentSession, io, stt
from livekit.agents.language import LanguageCode

from examples.livekit_bot import ScriptedLLM, run_bot
from tests.integration.livekit_caller import Caller, Speech, voice_session

pytestmark = pytest.mark.integration


async def test_the_livekit_example_bot_arrives_as_turn_events_and_a_sealed_session(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, clickhouse: Client
) -> None:
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="lk-bot", framework="livekit", topics=topics, spool_dir=tmp_path
    ) as producer:
        await run_bot(producer, "room-1")

    *events, end = await read_events(kafka_bootstrap, topics.turn_events, 9)
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
    assert isinstance(end, SessionEnded), "the session's close ends it, once"
    assert (end.seq, end.event_count) == (len(events), len(events) + 1)
    completeness = await projected_completeness(kafka_bootstrap, topics, clickhouse, "room-1")
    assert (completeness.state, completeness.complete, completeness.holes) == ("sealed", True, [])


async def test_an_egress_file_already_in_a_bucket_is_indexed_where_it_lies(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, s3proxy: DevS3, s3_chunk_store_url: str
) -> None:
    """Written there by LiveKit Egress, not by this project: read once, never copied."""
    bucket = s3_chunk_store_url.removeprefix("s3://").split("/")[0]
    egress = s3proxy.buckets_dir / bucket / "egress" / "room 1.wav"
    egress.parent.mkdir(parents=True)
    await asyncio.to_thread(_write_recording, egress, 2.0, 16_000)
    uri = f"s3://{bucket}/egress/room%201.wav"
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="lk-bot", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:
        published = await publish_recording(
            producer, "room-s3", uri, recording_started_at=datetime(2026, 11, 21, tzinfo=UTC)
        )
    data = egress.read_bytes()
    assert (published.uri, published.format, published.channels) == (uri, "wav", 2)
    assert (published.num_samples, published.sample_rate) == (32_000, 16_000)
    assert (published.byte_size, published.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert list(s3proxy.buckets_dir.glob(f"{bucket}/**/*.wav")) == [egress]


def _write_recording(path: Path, seconds: float, rate: int) -> None:
    path.write_bytes(wav_bytes(b"\x00\x00" * 2 * int(seconds * rate), rate, channels=2))


@pytest.mark.parametrize("room", ["room-2", "r" * MAX_ID_CHARS], ids=["room", "longest room"])
async def test_a_recording_file_is_published_as_one_chunk(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, room: str
) -> None:
    """A room named as long as the contract allows made a chunk id it refused."""
    recording = tmp_path / "session.wav"
    await asyncio.to_thread(_write_recording, recording, 1.5, 48_000)
    started = datetime(2026, 11, 21, 12, tzinfo=UTC)
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="lk-bot", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:
        await publish_recording(producer, room, recording, recording_started_at=started)
    (chunk,) = await read_events(kafka_bootstrap, topics.audio_chunks, 1)
    assert chunk.session_id == room
    assert isinstance(chunk, ChunkReady)
    assert (chunk.track, chunk.format, chunk.channels) == ("mixed", "wav", 2)
    assert (chunk.sample_rate, chunk.num_samples) == (48_000, 72_000)
    assert chunk.recording_started_at == started
    assert chunk.uri == recording.resolve().as_uri()


class _Silence(io.AudioInput):
    """Microphone stand-in: 10 ms of silence at a time, so the STT pipeline runs."""

    def __init__(self) -> None:
        super().__init__(label="silence")

    async def __anext__(self) -> rtc.AudioFrame:
        await asyncio.sleep(0.01)
        return rtc.AudioFrame.create(16000, 1, 160)


class _UnusedSTT(stt.STT[Any]):
    """The session needs an STT; the agent's ``stt_node`` replaces what it would do."""

    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))

    async def _recognize_impl(self, *args: Any, **kwargs: Any) -> stt.SpeechEvent:
        raise NotImplementedError


class _ScriptedListener(Agent):
    """Hears one scripted utterance: start of speech, a final transcript, end of speech."""

    def __init__(self, text: str, speaking_s: float) -> None:
        super().__init__(instructions="Help with orders.")
        self.text = text
        self.speaking_s = speaking_s

    async def stt_node(self, audio: Any, model_settings: Any) -> AsyncIterator[stt.SpeechEvent]:
        drain = asyncio.create_task(_drain(audio))
        try:
            await asyncio.sleep(0.2)
            yield stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH)
            await asyncio.sleep(self.speaking_s)
            yield stt.SpeechEvent(
                type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                alternatives=[
                    stt.SpeechData(language=LanguageCode("en"), text=self.text, confidence=0.93)
                ],
            )
            yield stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH)
            await asyncio.Event().wait()
        finally:
            drain.cancel()


async def _drain(audio: AsyncIterator[Any]) -> None:
    async for _ in audio:
        pass


async def test_a_voice_turn_takes_its_times_from_the_speech_events(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    session: AgentSession[None] = AgentSession(
        stt=_UnusedSTT(), llm=ScriptedLLM(["It shipped Monday."]), turn_detection="stt"
    )
    session.input.audio = _Silence()
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="lk-voice", topics=topics, spool_dir=tmp_path
    ) as producer:
        attach_livekit(producer, session, session_id="room-voice")
        await session.start(_ScriptedListener("Where is my order?", speaking_s=0.6))
        await asyncio.sleep(2.5)
        await session.aclose()

    events = await read_events(kafka_bootstrap, topics.turn_events, 4)
    started = {e.turn_id: e for e in events if isinstance(e, TurnStarted)}
    user = next(e for e in events if isinstance(e, TurnStopped) and e.role == "user")
    assert user.text == "Where is my order?"
    assert started[user.turn_id].detection_strategy == "vad", "user_state_changed opened it"
    assert started[user.turn_id].started_at == user.started_at
    assert 550 <= user.duration_ms <= 1000, "speaking times, not the message's creation"
    assert user.language == "en", "the STT's language of the final transcript"
    assert any(isinstance(e, TurnStopped) and e.role == "assistant" for e in events)


async def _project(bootstrap: str, topics: Topics, store: Store) -> None:
    async with Projector(
        bootstrap=bootstrap, topics=topics, group_id=f"{topics.prefix}projector", store=store
    ) as projector:
        await projector.catch_up()


async def _converse(
    bootstrap: str,
    topics: Topics,
    spool: Path,
    session_id: str,
    caller: Caller,
    s: float,
    typed: tuple[float, str] | None = None,
) -> float:
    """Run ``caller`` against a voice session for ``s`` seconds, and type ``typed`` (text at a
    time) if given; the wall clock of the caller's t=0."""
    session = voice_session(caller, ["Sure, what is the new address?", "You're welcome."])
    async with TranscriptProducer(
        bootstrap, bot_id="lk-voice", topics=topics, spool_dir=spool
    ) as producer:
        attach_livekit(producer, session, session_id=session_id)
        await session.start(Agent(instructions="Help with orders."))
        t0 = time.time() - caller.now()
        if typed is not None:
            await caller.until(typed[0])
            session.generate_reply(user_input=typed[1])
        await asyncio.sleep(max(0.0, s - caller.now()))
        await session.aclose()
    return t0


async def test_a_split_utterance_is_one_turn_and_speech_without_words_is_no_turn(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, clickhouse: Client
) -> None:
    """Four spoken turns are four complete rows: a 0.45 s pause inside the first utterance
    and a cough (speech, no transcript) before the second, then one as the call ends."""
    caller = Caller(
        [
            Speech(0.3, 1.1, "I'd like to change"),
            Speech(1.55, 2.5, "my delivery address."),
            Speech(5.0, 5.25),
            Speech(7.0, 7.8, "Thanks, that's all."),
            Speech(9.2, 9.4),
        ]
    )
    await _converse(kafka_bootstrap, topics, tmp_path, "room-split", caller, 10.0)

    store = Store(clickhouse)
    await _project(kafka_bootstrap, topics, store)
    rows = store.session("room-split")
    assert [(r.role, r.text, r.complete) for r in rows] == [
        ("user", "I'd like to change my delivery address.", True),
        ("assistant", "Sure, what is the new address?", True),
        ("user", "Thanks, that's all.", True),
        ("assistant", "You're welcome.", True),
    ]
    *events, end = await read_events(kafka_bootstrap, topics.turn_events, 9)
    assert len(events) == 8, "one start and one stop per turn, nothing for the coughs"
    assert isinstance(end, SessionEnded)


async def test_a_turn_after_a_cough_starts_when_its_speech_starts(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """LiveKit's ``started_speaking_at`` of the message is anchored at the cough."""
    caller = Caller([Speech(0.3, 0.55), Speech(2.0, 2.8, "Thanks, that's all.")])
    t0 = await _converse(kafka_bootstrap, topics, tmp_path, "room-cough", caller, 4.0)

    events = await read_events(kafka_bootstrap, topics.turn_events, 2)
    user = next(e for e in events if isinstance(e, TurnStopped) and e.role == "user")
    assert user.text == "Thanks, that's all."
    assert abs(user.started_at.timestamp() - (t0 + 2.0)) < 0.15
    assert 700 <= user.duration_ms <= 1000


async def test_a_typed_message_after_a_cough_does_not_start_at_the_cough(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """A user message that comes without speech of its own (typed, here) is no continuation of
    speech that got no words more than a second before it."""
    caller = Caller([Speech(0.3, 0.55)])
    t0 = await _converse(
        kafka_bootstrap, topics, tmp_path, "room-typed", caller, 4.0, typed=(2.0, "Thanks.")
    )

    events = await read_events(kafka_bootstrap, topics.turn_events, 2)
    user = next(e for e in events if isinstance(e, TurnStopped) and e.role == "user")
    assert user.text == "Thanks."
    assert user.started_at.timestamp() > t0 + 1.5, "not at the cough (0.3 s)"


async def test_recordings_of_a_session_keep_their_own_rows_with_utc_ids(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, clickhouse: Client
) -> None:
    """Two Egress recordings of one session, one given with the caller's local offset."""
    first, second = tmp_path / "egress-1.wav", tmp_path / "egress-2.wav"
    await asyncio.to_thread(_write_recording, first, 1.0, 16_000)
    await asyncio.to_thread(_write_recording, second, 2.0, 16_000)
    paris = timezone(timedelta(hours=2))
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="lk-bot", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:
        for path, started in (
            (first, datetime(2026, 11, 21, 14, 0, tzinfo=paris)),
            (second, datetime(2026, 11, 21, 12, 30, tzinfo=UTC)),
        ):
            await publish_recording(producer, "room-eg", path, recording_started_at=started)

    store = Store(clickhouse)
    await _project(kafka_bootstrap, topics, store)
    chunks = store.chunks("room-eg")
    assert [(c.track, c.end_sample) for c in chunks] == [("mixed", 16_000), ("mixed", 32_000)]
    assert [c.chunk_id for c in chunks] == [
        "room-eg/mixed/recording-20261121T120000000000Z",
        "room-eg/mixed/recording-20261121T123000000000Z",
    ]
