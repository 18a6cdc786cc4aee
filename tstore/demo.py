"""``make demo``: conversations through the whole system on the embedded defaults.

A local broker starts; a short scripted call between a caller and a support bot, and a few
simulated calls with audio, are published as real Avro events; the projector writes them to
the embedded ClickHouse, and the scripted transcript is read back through the query library,
so each piece is seen working with the others. ``tstore demo`` then serves the store.

The scripted call ends as a real one does, with its ``SessionEnded``, and is placed so that it
ended just before the demo publishes it (no event stamped ahead of real time).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from audio.stores import open_chunk_store
from consumers.live import live_projectors
from consumers.storage.clickhouse import Store, open_store
from consumers.topics_admin import ensure_topics
from producers import EventPublisher, TranscriptProducer
from producers.simulator import HANG_UP_S, simulate
from queries import Reader, Turn
from queries.sessions import transcript
from schemas import Event, ProducerInfo, Role, SessionEnded, TurnStarted, TurnStopped
from tstore.settings import Settings

DEMO_PRODUCER = ProducerInfo(framework="demo", framework_version="", library_version="0.1.0")
SIMULATED_CALLS = 3
"""Calls with audio (both tracks as WAV chunks) beside the scripted one, so the store has
something to list, search and play."""


@dataclass(frozen=True)
class ScriptedTurn:
    role: Role
    text: str
    gap_s: float
    """Silence before the turn starts (for the assistant: its response latency)."""
    duration_s: float
    interrupted: bool = False


SCRIPT = (
    ScriptedTurn("assistant", "Hi, this is Ada from Acme support. How can I help?", 0.4, 2.6),
    ScriptedTurn("user", "My order hasn't arrived yet.", 0.9, 1.8),
    ScriptedTurn("assistant", "Sorry to hear that. Can you give me the order number?", 0.7, 2.9),
    ScriptedTurn("user", "It's 4 4 1 7.", 0.6, 1.4),
    ScriptedTurn(
        "assistant", "Thanks. Order 4417 left our warehouse on Monday and", 0.8, 2.1, True
    ),
    ScriptedTurn("user", "Monday? It should have been here by now.", 0.1, 1.9),
    ScriptedTurn(
        "assistant", "You're right, I've opened a claim and you'll get an email today.", 0.6, 3.2
    ),
)


def script_length_s() -> float:
    """The scripted call, from its start to its end."""
    return sum(t.gap_s + t.duration_s for t in SCRIPT) + HANG_UP_S


def conversation_events(session_id: str, bot_id: str, start: datetime) -> list[Event]:
    """The scripted call from ``start``: its turns, then its ``SessionEnded`` after the last."""
    events: list[Event] = []
    clock = start
    for index, turn in enumerate(SCRIPT):
        started = clock + timedelta(seconds=turn.gap_s)
        stopped = started + timedelta(seconds=turn.duration_s)
        common = {
            "session_id": session_id,
            "bot_id": bot_id,
            "producer": DEMO_PRODUCER,
            "turn_id": f"turn-{index}",
            "role": turn.role,
            "started_at": started,
        }
        events.append(TurnStarted(seq=len(events), occurred_at=started, **common))
        events.append(
            TurnStopped(
                seq=len(events),
                occurred_at=stopped,
                stopped_at=stopped,
                text=turn.text,
                interrupted=turn.interrupted,
                **common,
            )
        )
        clock = stopped
    events.append(
        SessionEnded(
            session_id=session_id,
            bot_id=bot_id,
            producer=DEMO_PRODUCER,
            seq=len(events),
            occurred_at=clock + timedelta(seconds=HANG_UP_S),
            event_count=len(events) + 1,
        )
    )
    return events


class Demo(NamedTuple):
    session_id: str
    """The scripted call."""
    turns: list[Turn]
    """Its turns, read back through the query library."""
    clip_path: str
    """Where the service plays the first answer of a simulated call, which has audio."""


async def run_demo(settings: Settings, timeout_s: float = 60.0, store: Store | None = None) -> Demo:
    """Publish the scripted call and a few simulated calls with audio, and project them into
    ``store`` (by default the settings' one, opened first: a store another process holds is
    refused before anything is published or written)."""
    if store is None:
        store = await asyncio.to_thread(open_store, settings.dsn, settings.clickhouse_database)
    bootstrap = settings.kafka_bootstrap
    session_id = f"demo-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(seconds=script_length_s())
    events = conversation_events(session_id, "acme-support", start)
    await ensure_topics(bootstrap, settings.topics, partitions=settings.topic_partitions)
    async with EventPublisher(bootstrap, settings.topics) as publisher:
        await publisher.publish_all(events)
    async with TranscriptProducer(
        bootstrap,
        bot_id="simulator",
        framework="simulator",
        topics=settings.topics,
        spool_dir=settings.data_dir / "spool",
    ) as producer:
        with_audio = await simulate(
            producer,
            sessions=SIMULATED_CALLS,
            rate=0,
            turns=8,
            seed=random.randrange(2**31),
            chunks=open_chunk_store(str(settings.data_dir / "chunks")),
        )
    for projector in await live_projectors(
        bootstrap=bootstrap,
        topics=settings.topics,
        base_group=settings.consumer_group,
        store=store,
    ):
        async with projector:
            await projector.catch_up(timeout_s)
    turns = await asyncio.to_thread(transcript, Reader(store.client), session_id)
    return Demo(session_id, turns, f"/v1/sessions/{with_audio[0]}/turns/assistant-0/audio")
