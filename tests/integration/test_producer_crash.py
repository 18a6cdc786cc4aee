"""A bot process SIGKILLed mid-burst: what it had accepted long enough ago still reaches Kafka.

Each round runs a bot in a child process that publishes bursts of ``ChunkReady`` events through a
``TranscriptProducer`` with a small memory queue, writing every event's session, seq and
acceptance time (``time.monotonic``, one clock for all processes on Linux) to a log after each
burst. The test kills it at a random moment, and a new producer (or the next bot) starts on
the same spool directory. At the end every event accepted at least ``durability_window_ms``
before its kill must be on the topic, each session's first arrivals in seq order.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
from aiokafka import AIOKafkaConsumer

from producers import DeliveryConfig, TranscriptProducer
from schemas import EventCodec, Topics
from tstore.devkafka.broker import free_port

pytestmark = pytest.mark.integration

WINDOW_MS = DeliveryConfig().durability_window_ms

_BOT = """
import asyncio, sys, time
from datetime import UTC, datetime
from aiokafka import AIOKafkaProducer
from producers import DeliveryConfig, TranscriptProducer
from schemas import Topics

bootstrap, spool, prefix, log_path, bot, ack_delay_ms, per_burst = sys.argv[1:8]
send = AIOKafkaProducer.send

async def slow_send(self, *args, **kwargs):
    # a broker that takes ack_delay_ms to acknowledge (replication, load, a far region)
    acked = await send(self, *args, **kwargs)
    async def later():
        result = await acked
        await asyncio.sleep(int(ack_delay_ms) / 1000)
        return result
    return asyncio.ensure_future(later())

if int(ack_delay_ms):
    AIOKafkaProducer.send = slow_send

async def main() -> None:
    producer = TranscriptProducer(bootstrap, bot_id=bot, topics=Topics(prefix), spool_dir=spool,
        delivery=DeliveryConfig(memory_events=40, request_timeout_ms=2000, retry_pause_s=0.2))
    started = datetime.now(UTC)
    async with producer:
        with open(log_path, "w") as log:
            for burst in range(100_000):
                lines = []
                for i in range(int(per_burst)):
                    session = f"{bot}-s{i % 4}"
                    event = producer.chunk_ready(
                        session, chunk_id=f"c{burst}-{i}", track="user", chunk_seq=burst,
                        uri=f"file:///chunks/{bot}/{burst}-{i}.wav", format="wav",
                        sample_rate=16000, channels=1, start_sample=burst * 16000,
                        num_samples=16000, recording_started_at=started, byte_size=32044,
                        sha256="0" * 64)
                    lines.append(f"{session} {event.seq} {time.monotonic()}\\n")
                log.write("".join(lines))
                log.flush()
                await asyncio.sleep(0.04)

asyncio.run(main())
"""


class Accepted(NamedTuple):
    session: str
    seq: int
    at: float


@dataclass(frozen=True)
class Round:
    """One bot's life: the kill time, and every event it reported accepted before it."""

    killed_at: float
    accepted: list[Accepted]

    @property
    def required(self) -> list[Accepted]:
        return [a for a in self.accepted if a.at <= self.killed_at - WINDOW_MS / 1000]


@dataclass(frozen=True)
class Bot:
    bootstrap: str
    spool: Path
    topics: Topics
    ack_delay_ms: int = 0
    """Slow acknowledgements: events wait in memory, unacknowledged, longer than the window."""
    burst: int = 120
    """Events per burst, one burst every 40 ms."""

    def run_and_kill(
        self, name: str, log: Path, rng: random.Random, earliest_s: float = 0.1
    ) -> Round:
        """Start the bot, let it talk for a random while, SIGKILL it."""
        args = [self.bootstrap, str(self.spool), self.topics.prefix, str(log), name]
        child = subprocess.Popen(
            [sys.executable, "-c", _BOT, *args, str(self.ack_delay_ms), str(self.burst)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while not (log.exists() and log.stat().st_size > 0):
                assert child.poll() is None, child.stderr.read() if child.stderr else b""
                assert time.monotonic() < deadline, "the bot never started talking"
                time.sleep(0.01)
            time.sleep(rng.uniform(earliest_s, 2.0))
            killed_at = time.monotonic()
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        accepted = [Accepted(s, int(q), float(t)) for s, q, t in _lines(log)]
        assert accepted, "the bot accepted nothing before the kill"
        return Round(killed_at, accepted)


def _lines(log: Path) -> list[list[str]]:
    """Complete lines only: the kill may cut the last one short."""
    return [line.split() for line in log.read_text().splitlines() if len(line.split()) == 3]


async def _deliver_what_was_saved(bootstrap: str, spool: Path, topics: Topics) -> None:
    """A fresh producer on the crashed bots' spool directory delivers what it finds there."""
    async with TranscriptProducer(
        bootstrap, bot_id="restart", topics=topics, spool_dir=spool, close_timeout_s=30
    ) as restarted:
        deadline = time.monotonic() + 60
        await asyncio.sleep(0.5)
        while restarted.stats.spool_bytes or restarted.stats.backlog:
            assert time.monotonic() < deadline, restarted.stats
            await asyncio.sleep(0.1)


async def _arrivals(
    bootstrap: str, topic: str, wanted: set[tuple[str, int]]
) -> list[tuple[str, int]]:
    """(session, seq) of every event on the topic, read until ``wanted`` is there or 30 s pass."""
    codec = EventCodec()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen: list[tuple[str, int]] = []
    try:
        deadline = time.monotonic() + 30
        while not wanted <= set(seen) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    event = codec.decode(record.value or b"")
                    seen.append((event.session_id, event.seq))
    finally:
        await consumer.stop()
    return seen


async def _assert_kept(rounds: list[Round], bootstrap: str, topic: str) -> None:
    """Nothing accepted before the window is missing; each session's first arrivals in order."""
    required = [a for r in rounds for a in r.required]
    seen = await _arrivals(bootstrap, topic, {(a.session, a.seq) for a in required})
    arrived = set(seen)
    for number, bot in enumerate(rounds):
        lost = [a for a in bot.accepted if (a.session, a.seq) not in arrived]
        late = [a for a in lost if a.at <= bot.killed_at - WINDOW_MS / 1000]
        ages = sorted(round(1000 * (bot.killed_at - a.at)) for a in lost)
        print(
            f"kill {number}: accepted {len(bot.accepted)}, lost {len(lost)} (ages ms {ages[:1]}"
            f"..{ages[-1:]}), of them accepted >= {WINDOW_MS} ms before the kill: {len(late)}"
        )
    lost = [a for a in required if (a.session, a.seq) not in arrived]
    assert not lost, (
        f"{len(lost)} of {len(required)} events accepted >= {WINDOW_MS} ms before a kill were "
        f"lost, e.g. {lost[:3]}"
    )
    first: dict[str, list[int]] = defaultdict(list)
    for session, seq in dict.fromkeys(seen):
        first[session].append(seq)
    for session, seqs in first.items():
        assert seqs == sorted(seqs), f"{session} out of order"


def _rng() -> random.Random:
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    return random.Random(seed)


async def test_a_bot_killed_mid_burst_loses_nothing_accepted_before_the_window(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """Five bots killed, each followed by a producer on its spool directory.

    Every other bot talks slowly to a Kafka that acknowledges slower than the window: its events
    stay in the memory queue, unacknowledged, for longer than the window.
    """
    rng = _rng()
    rounds = []
    for kill in range(5):
        spool = tmp_path / f"spool{kill}"
        bot = (
            Bot(kafka_bootstrap, spool, topics, ack_delay_ms=2 * WINDOW_MS, burst=3)
            if kill % 2
            else Bot(kafka_bootstrap, spool, topics)
        )
        log = tmp_path / f"bot{kill}.log"
        rounds.append(await asyncio.to_thread(bot.run_and_kill, f"bot{kill}", log, rng))
        await _deliver_what_was_saved(kafka_bootstrap, spool, topics)
    await _assert_kept(rounds, kafka_bootstrap, topics.audio_chunks)


async def test_a_bot_killed_while_kafka_is_unreachable_loses_nothing_before_the_window(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """Two kills with the broker out of reach, then a restart against the real one."""
    rng = _rng()
    spool = tmp_path / "spool"
    nowhere = Bot(f"127.0.0.1:{free_port()}", spool, topics)
    rounds = [
        await asyncio.to_thread(
            nowhere.run_and_kill, f"bot{kill}", tmp_path / f"bot{kill}.log", rng, 0.3
        )
        for kill in range(2)
    ]
    await _deliver_what_was_saved(kafka_bootstrap, spool, topics)
    await _assert_kept(rounds, kafka_bootstrap, topics.audio_chunks)
