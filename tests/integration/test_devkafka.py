"""The launcher's promises: a working broker, a clean stop, recovery, and no orphan JVM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidTimestampError
from structlog.testing import capture_logs

from consumers.topics_admin import KEEP_EVENTS, ensure_topics
from schemas import Topics
from tests.conftest import unique_name
from tstore.devkafka import DevKafka

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return state != "Z"


def _wait_dead(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


async def _roundtrip(bootstrap: str, topic: str, value: bytes) -> list[bytes]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    return [r.value for records in batches.values() for r in records if r.value is not None]


def test_a_killed_broker_comes_back_with_its_data_and_close_leaves_no_process() -> None:
    broker = DevKafka()
    broker.start()
    topics = Topics("restart.")
    asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=1))
    assert asyncio.run(_roundtrip(broker.bootstrap, topics.turn_events, b"before")) == [b"before"]
    assert broker.pid is not None
    crashed = broker.pid

    broker.kill()
    assert not _alive(crashed)
    broker.start()
    values = asyncio.run(_roundtrip(broker.bootstrap, topics.turn_events, b"after"))
    assert values == [b"before", b"after"]

    running = broker.pid
    assert running is not None
    data_dir = broker.data_dir
    broker.close()
    assert not _alive(running)
    assert not data_dir.exists()


_PARENT = """
import sys, time
from tstore.devkafka import DevKafka
broker = DevKafka()
broker.start()
print(broker.pid, flush=True)
time.sleep(600)
"""


def test_the_broker_dies_with_a_parent_killed_by_sigkill() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    try:
        assert parent.stdout is not None
        jvm = int(parent.stdout.readline())
        assert _alive(jvm)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_dead(jvm, within_s=10), f"JVM {jvm} outlived its parent"
    finally:
        parent.kill()
        parent.wait()


async def test_topic_creation_is_idempotent(kafka_bootstrap: str) -> None:
    topics = Topics("idempotent.")
    await ensure_topics(kafka_bootstrap, topics, partitions=4)
    await ensure_topics(kafka_bootstrap, topics, partitions=4)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics.all))
    finally:
        await admin.close()
    assert {d["topic"]: len(d["partitions"]) for d in described} == dict.fromkeys(topics.all, 4)


async def test_topics_keep_their_events_and_topics_that_lose_them_are_named(
    kafka_bootstrap: str,
) -> None:
    """Kafka is the source of truth: with the broker's default (7 days), a size limit or
    compaction, a rebuild later would lose calls or parts of them."""
    kept, losing = Topics(f"{unique_name('kept')}."), Topics(f"{unique_name('losing')}.")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(losing.turn_events, 1, 1),  # the broker's defaults
                NewTopic(
                    losing.audio_chunks,
                    1,
                    1,
                    topic_configs={
                        "retention.ms": "-1",
                        "retention.bytes": "1000000",
                        "cleanup.policy": "compact",
                    },
                ),
            ]
        )
        with capture_logs() as logged:
            assert await ensure_topics(kafka_bootstrap, kept, partitions=1) == {}
            found = await ensure_topics(kafka_bootstrap, losing, partitions=1)
        for _ in range(50):  # a topic just made may be described without its settings yet
            settings = await _settings(admin, kept.all)
            if all(settings.values()):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    assert settings == dict.fromkeys(kept.all, KEEP_EVENTS)
    producer_dated = (
        "refuses the events of a bot whose clock runs ahead of the broker's "
        "(message.timestamp.type=CreateTime)"
    )
    assert found == {
        losing.turn_events: [
            "deletes events older than 7 days (retention.ms=604800000)",
            producer_dated,
        ],
        losing.audio_chunks: [
            "deletes its oldest events past 1,000,000 bytes a partition (retention.bytes=1000000)",
            "keeps only each session's newest event (cleanup.policy=compact)",
            producer_dated,
        ],
    }
    warned = {e["topic"]: e for e in logged if e["event"] == "topic_loses_events"}
    assert set(warned) == set(found)
    assert all(e["log_level"] == "warning" for e in warned.values())
    assert (
        f"--entity-name {losing.turn_events} --add-config "
        "retention.ms=-1,retention.bytes=-1,cleanup.policy=delete,"
        "message.timestamp.type=LogAppendTime" in warned[losing.turn_events]["advice"]
    )


async def test_a_bot_whose_clock_runs_ahead_still_has_its_events_taken(
    kafka_bootstrap: str,
) -> None:
    """Records dated by the producer are refused for good past the broker's
    ``message.timestamp.after.max.ms`` (an hour, in Kafka 4): a bot host with a clock two hours
    fast lost every event it sent. The store's topics are dated by the broker."""
    ahead_ms = int((time.time() + 2 * 3600) * 1000)
    ours, producer_dated = Topics(f"{unique_name('ours')}."), unique_name("producer-dated")
    await ensure_topics(kafka_bootstrap, ours, partitions=1)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(producer_dated, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        with pytest.raises(InvalidTimestampError):
            await producer.send_and_wait(producer_dated, b"event", timestamp_ms=ahead_ms)
        taken = await producer.send_and_wait(ours.turn_events, b"event", timestamp_ms=ahead_ms)
    finally:
        await producer.stop()
    assert abs(taken.timestamp - time.time() * 1000) < 60_000  # the broker's date


async def _settings(admin: AIOKafkaAdminClient, names: Iterable[str]) -> dict[str, dict[str, str]]:
    (described,) = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, n, dict.fromkeys(KEEP_EVENTS)) for n in names]
    )
    return {
        r["resource_name"]: {e["config_names"]: e["config_value"] for e in r["config_entries"]}
        for r in described.to_object()["resources"]
    }
