"""The projector killed with SIGKILL again and again while events stream in: the tables end up
holding exactly the produced turns, none missing, none doubled."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from producers import EventPublisher
from schemas import Topics
from tests.conftest import unique_name
from tests.integration.reading import committed_total, store_group
from tstore.demo import SCRIPT, conversation_events
from tstore.devkafka.broker import free_port

pytestmark = pytest.mark.integration

KILLS = 20
SESSIONS = 120

_VERIFY = """
import asyncio, json, sys
from consumers.projector import Projector
from consumers.storage.clickhouse import Store, connect
from schemas import Topics

async def main():
    bootstrap, dsn, prefix, group = sys.argv[1:5]
    store = Store(connect(dsn, "crash"))
    projector = Projector(bootstrap=bootstrap, topics=Topics(prefix), group_id=group, store=store)
    async with projector:
        await projector.catch_up()
    query = lambda sql: store.client.query(sql).result_rows
    print(json.dumps({
        "turns": query("SELECT session_id, groupArray(text) FROM "
                       "(SELECT * FROM transcripts ORDER BY started_at) GROUP BY session_id"),
        "incomplete_turns": query("SELECT count() FROM transcripts WHERE NOT complete")[0][0],
        "events": query("SELECT count() FROM session_events")[0][0],
        "durations": query("SELECT count() FROM turn_durations")[0][0],
        "incomplete_sessions": store.incomplete_sessions(),
    }))

asyncio.run(main())
"""


async def _stream(bootstrap: str, topics: Topics) -> None:
    async with EventPublisher(bootstrap, topics) as publisher:
        for n in range(SESSIONS):
            await publisher.publish_all(conversation_events(f"s{n:03d}", "bot", datetime.now(UTC)))
            await asyncio.sleep(0.5)


async def test_twenty_sigkills_while_streaming_leave_exact_tables(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = Topics(f"{unique_name('crash')}.")
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    group = unique_name("crash")
    env = os.environ | {
        "TSTORE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "TSTORE_TOPIC_PREFIX": topics.prefix,
        "TSTORE_TOPIC_PARTITIONS": "3",
        "TSTORE_CLICKHOUSE_DSN": dsn,
        "TSTORE_CLICKHOUSE_DATABASE": "crash",
        "TSTORE_CONSUMER_GROUP": group,
        "TSTORE_CONSUMER_SESSION_TIMEOUT_MS": "1000",
        "TSTORE_HTTP_PORT": str(free_port()),
    }
    projector_cmd = [str(Path(sys.executable).with_name("tstore")), "project"]
    rng = random.Random(20)
    log = (tmp_path / "projector.log").open("ab")
    streaming: asyncio.Task[None] | None = None
    kills = 0
    try:
        while kills < KILLS:
            process = await asyncio.create_subprocess_exec(
                *projector_cmd, env=env, stdout=log, stderr=log
            )
            await asyncio.sleep(rng.uniform(2.0, 4.0))
            if streaming is None:
                streaming = asyncio.create_task(_stream(kafka_bootstrap, topics))
            assert process.returncode is None, "the projector died on its own; see its log"
            process.send_signal(signal.SIGKILL)
            await process.wait()
            kills += 1
        assert streaming is not None
        await streaming
    finally:
        log.close()
    live_group = await store_group(kafka_bootstrap, group, 1)  # a fresh store starts at 1
    assert live_group is not None, "the projectors never joined their group"
    committed = await committed_total(kafka_bootstrap, live_group)
    assert committed > 0, "the killed projectors were projecting, not only starting up"

    verify = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _VERIFY, kafka_bootstrap, dsn, topics.prefix, live_group],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert verify.returncode == 0, verify.stderr[-3000:]
    result = json.loads(verify.stdout.strip().splitlines()[-1])
    expected = [t.text for t in SCRIPT]
    assert dict(result["turns"]) == {f"s{n:03d}": expected for n in range(SESSIONS)}
    assert result["incomplete_turns"] == 0
    assert result["events"] == SESSIONS * (2 * len(SCRIPT) + 1)  # and its SessionEnded
    assert result["durations"] == SESSIONS * len(SCRIPT)
    assert result["incomplete_sessions"] == []
