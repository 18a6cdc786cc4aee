"""Simulated voice-bot calls driven through the real producer.

Each call alternates user and assistant turns with realistic lengths and response latencies;
some assistant answers are interrupted (the user starts talking before the answer ends) and
some user turns end by the stop timeout. With audio on, both tracks are written as WAV chunks
in which every turn is a tone whose frequency identifies it (``tone_hz``), so a test can check
that the audio at a turn's samples really is that turn. Timestamps follow the simulated
timeline; ``rate`` paces how fast events are emitted, not the timeline. Each call's timeline
is placed so that it is over as the call starts to be published (``call_length_s`` before
then), as a bot publishes what already happened: no turn is stamped ahead of real time, and
the ``SessionEnded``, which the producer stamps as it is published, comes after the last turn.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from audio.stores import ChunkWriter
from producers.chunks import RecordingChunker
from producers.producer import TranscriptProducer
from schemas import Role

SAMPLE_RATE = 16_000
_TRACKS: tuple[Role, ...] = ("user", "assistant")

_USER_LINES = (
    "Hi, I'm calling about my order.",
    "It was supposed to arrive on Monday.",
    "The order number is 4 4 1 7.",
    "Can you check where it is now?",
    "No, that's not the right address.",
    "Okay, thanks. Could you send me an email about it?",
)
_ASSISTANT_LINES = (
    "Thanks for calling Acme support, how can I help?",
    "Let me look that up for you, one moment.",
    "I can see the parcel left our warehouse yesterday afternoon.",
    "It is with the carrier now and should arrive within two days.",
    "I've updated the delivery address and sent you a confirmation.",
    "Is there anything else I can help you with today?",
)


@dataclass(frozen=True)
class SimulatedTurn:
    index: int
    role: Role
    text: str
    start_s: float
    """Seconds from the start of the call (sample 0 of its recording)."""
    end_s: float
    interrupted: bool = False
    timed_out: bool = False


def tone_hz(turn_index: int) -> float:
    """The tone that fills a turn's audio: distinct per turn, inside telephone bandwidth."""
    return 300.0 + 40.0 * (turn_index % 60)


def script_call(rng: random.Random, turns: int) -> list[SimulatedTurn]:
    """A call's timeline: alternating turns, latencies of 0.3-1.5 s, ~12 % barge-ins."""
    script: list[SimulatedTurn] = []
    clock = rng.uniform(0.2, 1.0)
    for index in range(turns):
        role: Role = "assistant" if index % 2 == 0 else "user"
        lines = _ASSISTANT_LINES if role == "assistant" else _USER_LINES
        length = rng.uniform(1.5, 5.0) if role == "assistant" else rng.uniform(0.8, 3.5)
        interrupted = role == "assistant" and index + 1 < turns and rng.random() < 0.12
        if interrupted:
            length *= rng.uniform(0.3, 0.7)
        script.append(
            SimulatedTurn(
                index,
                role,
                lines[(index // 2) % len(lines)],
                round(clock, 3),
                round(clock + length, 3),
                interrupted=interrupted,
                timed_out=role == "user" and rng.random() < 0.05,
            )
        )
        # A barge-in: the user starts talking just before the cut-off answer ends.
        gap = -rng.uniform(0.1, 0.3) if interrupted else rng.uniform(0.3, 1.5)
        clock += length + gap
    return script


def track_audio(script: list[SimulatedTurn], role: Role, start_s: float, end_s: float) -> bytes:
    """16-bit PCM of one track between two instants: each turn's tone, silence elsewhere."""
    first, last = round(start_s * SAMPLE_RATE), round(end_s * SAMPLE_RATE)
    samples = [0] * (last - first)
    for turn in script:
        if turn.role != role:
            continue
        lo = max(first, round(turn.start_s * SAMPLE_RATE))
        hi = min(last, round(turn.end_s * SAMPLE_RATE))
        step = 2 * math.pi * tone_hz(turn.index) / SAMPLE_RATE
        for n in range(lo, hi):
            samples[n - first] = int(8000 * math.sin(step * n))
    return struct.pack(f"<{len(samples)}h", *samples)


@dataclass(frozen=True)
class _Emit:
    at_s: float
    kind: str
    turn: SimulatedTurn | None = None
    chunk_end_s: float = 0.0


HANG_UP_S = 0.5
"""Recorded silence after the last turn, before the call ends."""


def call_length_s(script: list[SimulatedTurn]) -> float:
    """From sample 0 of the call's recording to its end (its last chunk's end)."""
    return max(t.end_s for t in script) + HANG_UP_S


def _timeline(script: list[SimulatedTurn], chunk_s: float | None) -> Iterator[_Emit]:
    emits = [_Emit(t.start_s, "start", t) for t in script]
    emits += [_Emit(t.end_s, "stop", t) for t in script]
    if chunk_s:
        end = call_length_s(script)
        emits += [
            _Emit(min(k + chunk_s, end), "chunk", chunk_end_s=min(k + chunk_s, end))
            for k in _frange(0.0, end, chunk_s)
        ]
    return iter(sorted(emits, key=lambda e: (e.at_s, e.kind != "stop")))


def _frange(start: float, stop: float, step: float) -> Iterator[float]:
    value = start
    while value < stop:
        yield value
        value += step


class Pacer:
    """Spreads emissions at ``rate`` events per second over all simulated calls (0: no pacing)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()

    async def wait(self) -> None:
        if self._interval:
            self._next += self._interval
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)


async def simulate_call(
    producer: TranscriptProducer,
    session_id: str,
    script: list[SimulatedTurn],
    *,
    started_at: datetime,
    pacer: Pacer,
    chunks: ChunkWriter | None = None,
    chunk_s: float = 2.0,
) -> None:
    """Emit one call's events in timeline order, with its audio chunks when ``chunks`` is set.

    The ``SessionEnded`` is stamped when it is published: a ``started_at`` at least
    ``call_length_s`` in the past keeps it after the call's last turn."""
    chunker = RecordingChunker(producer, session_id, chunks) if chunks else None
    if chunker:
        chunker.start_segment(at=started_at)
    written_s = 0.0
    turn_ids: dict[int, str] = {}
    for emit in _timeline(script, chunk_s if chunker else None):
        await pacer.wait()
        at = started_at + timedelta(seconds=emit.at_s)
        turn = emit.turn
        if emit.kind == "start" and turn:
            turn_ids[turn.index] = f"{turn.role}-{turn.index}"
            producer.turn_started(session_id, turn_ids[turn.index], turn.role, started_at=at)
        elif emit.kind == "stop" and turn:
            producer.turn_stopped(
                session_id,
                turn_ids[turn.index],
                turn.role,
                text=turn.text,
                started_at=started_at + timedelta(seconds=turn.start_s),
                stopped_at=at,
                interrupted=turn.interrupted,
                timed_out=turn.timed_out,
            )
        elif chunker:
            for role in _TRACKS:
                pcm = track_audio(script, role, written_s, emit.chunk_end_s)
                await chunker.add(role, pcm, SAMPLE_RATE)
            written_s = emit.chunk_end_s
    producer.end_session(session_id)


async def simulate(
    producer: TranscriptProducer,
    *,
    sessions: int,
    rate: float,
    turns: int = 12,
    seed: int = 0,
    chunks: ChunkWriter | None = None,
    concurrency: int = 50,
) -> list[str]:
    """Run ``sessions`` calls, ``concurrency`` at a time; returns their session ids. The same
    seed gives the same calls under ids of their own each run: a second run under the same
    ids gave each session two histories, one version of each seq with the other's times,
    which the store cannot tell from a producer that reused its seqs."""
    rng = random.Random(seed)
    pacer = Pacer(rate)
    run = secrets.token_hex(3)
    ids = [f"sim-{seed}-{run}-{n:06d}" for n in range(sessions)]
    scripts = {sid: script_call(rng, turns) for sid in ids}
    slots = asyncio.Semaphore(concurrency)

    async def one(session_id: str) -> None:
        async with slots:
            await simulate_call(
                producer,
                session_id,
                scripts[session_id],
                started_at=datetime.now(UTC)
                - timedelta(seconds=call_length_s(scripts[session_id])),
                pacer=pacer,
                chunks=chunks,
            )

    await asyncio.gather(*(one(sid) for sid in ids))
    return ids
