from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from audio.stores import ChunkReader
from consumers.storage.clickhouse import connect
from queries import Reader
from queries.clips import ClipCutter
from queries.recording import turn_clip
from tstore.demo import SCRIPT, run_demo
from tstore.render import transcript
from tstore.settings import Settings

pytestmark = pytest.mark.integration


async def test_the_demo_reads_back_the_whole_scripted_call(
    kafka_bootstrap: str, clickhouse_dsn: str, database: str, tmp_path: Path
) -> None:
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        clickhouse_dsn=clickhouse_dsn,
        clickhouse_database=database,
        topic_prefix=f"{database}.",
        data_dir=tmp_path,
    )
    session_id, turns, clip_path = await run_demo(settings)
    assert session_id.startswith("demo-")
    assert [(t.role, t.text, t.interrupted) for t in turns] == [
        (t.role, t.text, t.interrupted) for t in SCRIPT
    ]
    assert all(t.complete for t in turns)
    assert [t.duration_ms for t in turns] == [round(t.duration_s * 1000) for t in SCRIPT]
    latencies = [t.response_latency_ms for t in turns if t.role == "assistant"]
    assert latencies[1:] == [700, 800, 600]
    printed = transcript(turns)
    assert "[interrupted]" in printed
    assert printed.count("\n") == len(SCRIPT) - 1
    assert list((tmp_path / "chunks").rglob("*.wav")), "the simulated calls wrote no audio"
    _, played, _, turn_id, _ = clip_path.removeprefix("/v1/").split("/")
    reader = Reader(connect(clickhouse_dsn, database))
    clip = await asyncio.to_thread(turn_clip, reader, ClipCutter(ChunkReader()), played, turn_id)
    assert clip.holes == {"assistant": []}
