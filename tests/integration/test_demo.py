from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from audio.stores import ChunkReader
from consumers.storage.clickhouse import connect
from queries import Reader
from queries.clips import ClipCutter
from queries.recording import turn_clip
from queries.sessions import session_detail
from tstore.demo import SCRIPT, run_demo
from tstore.devkafka import DevKafka
from tstore.render import transcript
from tstore.settings import Settings

pytestmark = pytest.mark.integration

TSTORE = str(Path(sys.executable).with_name("tstore"))


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
    # Every call ends as a real one does, after its last turn: never reported abandoned.
    at_once = Reader(connect(clickhouse_dsn, database), abandoned_after=timedelta(0))
    for call in (session_id, played):
        detail = await asyncio.to_thread(session_detail, at_once, call)
        ended = detail.summary.completeness
        assert ended.ended_at is not None, f"{call} never ended"
        assert ended.state != "abandoned", call
        assert ended.complete, ended.holes
        last_stop = max(t.stopped_at for t in detail.turns if t.stopped_at)
        first_start = min(t.started_at for t in detail.turns)
        assert ended.ended_at > last_stop > first_start, call


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tstore(*args: str, data_dir: Path, **more: str) -> subprocess.CompletedProcess[str]:
    """A ``tstore`` command with no ``TSTORE_*`` setting of this process's, and no store
    process answering at its port."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("TSTORE_")}
    settings = {"TSTORE_DATA_DIR": str(data_dir), "TSTORE_HTTP_PORT": str(_free_port()), **more}
    return subprocess.run(
        [TSTORE, *args],
        env=kept | settings,
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _demo_session(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"^Session (demo-[0-9a-f]+),", result.stdout, re.M)
    assert found, result.stdout
    return found.group(1)


def test_a_rebuild_after_two_demos_keeps_both_runs_calls(tmp_path: Path) -> None:
    """The demo's broker keeps its log beside its store (data/demo/kafka), so Kafka, the
    source of truth, still holds every call the store holds."""
    data = tmp_path / "data"
    first = _demo_session(_tstore("demo", "--no-serve", data_dir=data))
    second = _demo_session(_tstore("demo", "--no-serve", data_dir=data))
    with DevKafka(data / "demo" / "kafka") as broker:
        kafka = {"TSTORE_KAFKA_BOOTSTRAP": broker.bootstrap}
        rebuilt = _tstore("rebuild", data_dir=data / "demo", **kafka)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    for call in (first, second):
        read = _tstore("transcript", call, data_dir=data / "demo")
        assert read.returncode == 0, read.stdout + read.stderr
        assert SCRIPT[-1].text in read.stdout, read.stdout


def test_a_demo_refuses_a_store_another_process_holds_before_any_work(tmp_path: Path) -> None:
    data = tmp_path / "data"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from consumers.storage.clickhouse import open_store; "
            f"store = open_store('chdb://{data / 'demo' / 'clickhouse'}', 'transcript_store'); "
            "print('held', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        began = time.monotonic()
        result = _tstore("demo", "--no-serve", data_dir=data)
        took = time.monotonic() - began
    finally:
        holder.kill()
        holder.wait()
    said = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, said
    assert f"held by process {holder.pid}" in said
    assert "Traceback" not in said
    assert not (data / "demo" / "chunks").exists(), "calls were simulated before the refusal"
    assert not (data / "demo" / "kafka").exists(), "a broker was started before the refusal"
    assert "broker at" not in said, said
    assert took < 30, f"refused only after {took:.0f} s"


def test_a_demo_warns_of_a_store_without_its_log_only_when_the_store_holds_sessions(
    tmp_path: Path,
) -> None:
    """A demo opens (so makes) its store before its broker formats its log: a run that failed
    in between (here: no Java on PATH) leaves an empty store and no log, which the next run must
    not take for an older demo's store whose calls Kafka lost."""
    data = tmp_path / "data"
    no_java = tmp_path / "bin"
    no_java.mkdir()
    warning = "made by an earlier demo whose broker kept no log"
    for _ in range(2):
        failed = _tstore("demo", "--no-serve", data_dir=data, PATH=str(no_java))
        said = failed.stdout + failed.stderr
        assert failed.returncode == 1, said
        assert "`java` was not found" in said, said
        assert warning not in said, said
    store = data / "demo" / "clickhouse"
    assert store.is_dir()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from consumers.storage.clickhouse import open_store; "
            f"store = open_store('chdb://{store}', 'transcript_store'); "
            'store.client.command("INSERT INTO session_events_generations '
            "(generation, session_id, seq) VALUES (1, 'older', 0)\")",
        ],
        check=True,
        timeout=120,
    )
    failed = _tstore("demo", "--no-serve", data_dir=data, PATH=str(no_java))
    said = failed.stdout + failed.stderr
    assert warning in said, said
    assert "refuses to cut over" in said, said


def test_a_demo_on_a_port_in_use_is_refused_before_it_makes_a_store(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _tstore("demo", "--port", str(port), data_dir=tmp_path / "data")
    said = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, said
    assert f"cannot listen on 127.0.0.1:{port}" in said, said
    assert "Traceback" not in said
    assert not (tmp_path / "data" / "demo").exists(), "a store was made before the refusal"
