"""A rebuild process SIGKILLed midway, then resumed, ends where a clean rebuild ends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.codec import realistic_events
from consumers.topics_admin import ensure_topics
from producers import EventPublisher
from schemas import Topics
from tests.conftest import unique_name
from tests.integration.reading import committed_total, store_group
from tstore.devkafka.broker import free_port

pytestmark = pytest.mark.integration

EVENTS = 20_000

_CONTENTS = """
import json, sys
from consumers.storage.clickhouse import Store, connect
store = Store(connect(sys.argv[1], "rebuild"))
out = {"current": store.generations.current()}
for view in ("transcripts", "audio_chunks", "session_events", "turn_durations"):
    rows = store.client.query(
        f"SELECT * EXCEPT (source_topic, source_partition, source_offset, projected_at) "
        f"FROM {view} ORDER BY tuple(*)" if view != "turn_durations"
        else "SELECT * FROM turn_durations ORDER BY tuple(*)"
    ).result_rows
    out[view] = [[str(v) for v in row] for row in rows]
print(json.dumps(out))
"""


def _tstore(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("tstore")), *args]


def _env(bootstrap: str, topics: Topics, dsn: str, group: str) -> dict[str, str]:
    return os.environ | {
        "TSTORE_KAFKA_BOOTSTRAP": bootstrap,
        "TSTORE_TOPIC_PREFIX": topics.prefix,
        "TSTORE_CLICKHOUSE_DSN": dsn,
        "TSTORE_CLICKHOUSE_DATABASE": "rebuild",
        "TSTORE_CONSUMER_GROUP": group,
        "TSTORE_HTTP_PORT": str(free_port()),
        "TSTORE_BATCH_MAX_EVENTS": "500",
    }


def _run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def _contents(dsn: str, env: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(_run([sys.executable, "-c", _CONTENTS, dsn], env)))


async def test_a_sigkilled_rebuild_resumes_to_what_a_clean_rebuild_gives(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = Topics(f"{unique_name('rbcrash')}.")
    await ensure_topics(kafka_bootstrap, topics, partitions=3)
    async with EventPublisher(kafka_bootstrap, topics) as publisher:
        await publisher.publish_all(realistic_events(EVENTS))

    killed_dsn, clean_dsn = (f"chdb://{tmp_path / name}" for name in ("killed", "clean"))
    group = unique_name("rb")
    env = _env(kafka_bootstrap, topics, killed_dsn, group)
    process = await asyncio.create_subprocess_exec(
        *_tstore("rebuild"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(6000):  # polled: kill as soon as the rebuild has committed anything
        rebuilding = await store_group(kafka_bootstrap, group, 2)
        if rebuilding and (committed := await committed_total(kafka_bootstrap, rebuilding)):
            break
        await asyncio.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert 0 < committed < EVENTS, "killed midway"

    refused = await asyncio.to_thread(
        subprocess.run, _tstore("rebuild"), env=env, capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert "unfinished rebuild" in refused.stderr + refused.stdout
    resumed = await asyncio.to_thread(_run, _tstore("rebuild", "--resume"), env)
    assert "generation 2 live" in resumed

    clean_env = _env(kafka_bootstrap, topics, clean_dsn, unique_name("rb"))
    await asyncio.to_thread(_run, _tstore("rebuild"), clean_env)
    killed = await asyncio.to_thread(_contents, killed_dsn, env)
    clean = await asyncio.to_thread(_contents, clean_dsn, clean_env)
    assert killed["current"] == {"transcripts": 2, "audio_chunks": 2, "session_events": 2}
    assert len(killed["session_events"]) == EVENTS
    assert killed == clean
