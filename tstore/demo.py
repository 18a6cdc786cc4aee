"""``make demo``: one conversation through the whole system on the embedded defaults.

A local broker starts, a short scripted call between a caller and a support bot is published as
real Avro events, the projector writes it to the embedded ClickHouse, and the transcript is read
back from the table, so each piece is seen working with the others.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from consumers.live import live_projectors
from consumers.projections.transcripts import TranscriptRow
from consumers.storage.clickhouse import Store, connect
from consumers.topics_admin import ensure_topics
from producers import EventPublisher
from schemas import Event, ProducerInfo, Role, TurnStarted, TurnStopped
from tstore.settings import Settings

DEMO_PRODUCER = ProducerInfo(framework="demo", framework_version="", library_version="0.1.0")


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


def conversation_events(session_id: str, bot_id: str, start: datetime) -> list[Event]:
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
    return events


def format_transcript(rows: list[TranscriptRow]) -> str:
    if not rows:
        return "(no turns)"
    origin = rows[0].started_at
    lines = []
    for row in rows:
        offset = (row.started_at - origin).total_seconds()
        duration = "open" if row.duration_ms is None else f"{row.duration_ms / 1000:.1f}s"
        flag = " [interrupted]" if row.interrupted else ""
        lines.append(f"  +{offset:6.1f}s {row.role:>9} ({duration:>5}): {row.text}{flag}")
    return "\n".join(lines)


async def run_demo(
    settings: Settings, bootstrap: str, timeout_s: float = 60.0
) -> list[TranscriptRow]:
    """Publish the scripted call, project it, and return its rows read back from ClickHouse."""
    session_id = f"demo-{uuid.uuid4().hex[:8]}"
    events = conversation_events(session_id, "acme-support", datetime.now(UTC))
    await ensure_topics(bootstrap, settings.topics, partitions=settings.topic_partitions)
    async with EventPublisher(bootstrap, settings.topics) as publisher:
        await publisher.publish_all(events)
    store = Store(connect(settings.dsn, settings.clickhouse_database))
    for projector in await live_projectors(
        bootstrap=bootstrap,
        topics=settings.topics,
        base_group=settings.consumer_group,
        store=store,
    ):
        async with projector:
            await projector.catch_up(timeout_s)
    return await asyncio.to_thread(store.session, session_id)
