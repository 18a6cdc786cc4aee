"""The command line as a newcomer meets it: what each command says, with a real broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from consumers.admin import RebuildService
from consumers.storage.clickhouse import open_store
from schemas import Topics
from service.process import GRACE_S
from service.state import StoreState
from tests.commands import TSTORE, run_tstore, tstore_env
from tests.conftest import unique_name
from tests.integration.serving import serving
from tstore.devkafka import DevKafka
from tstore.devkafka.broker import free_port

pytestmark = pytest.mark.integration


def _simulated_ids(tmp_path: Path, bootstrap: str, topics: Topics, *more: str) -> list[str]:
    done = run_tstore(
        "simulate",
        "--sessions",
        "2",
        "--turns",
        "1",
        "--no-audio",
        "--rate",
        "0",
        *more,
        cwd=tmp_path,
        TSTORE_KAFKA_BOOTSTRAP=bootstrap,
        TSTORE_TOPIC_PREFIX=topics.prefix,
    )
    assert done.returncode == 0, done.stderr
    *ids, summary = done.stdout.strip().splitlines()
    assert "2 calls (seed " in summary
    assert len(ids) == 2
    return ids


def test_simulate_prints_new_session_ids_each_run_seeded_or_not(
    tmp_path: Path, kafka_bootstrap: str, topics: Topics
) -> None:
    """A seed gives the same calls again, not the same sessions: published again under the
    same ids, each would have two histories."""
    first = _simulated_ids(tmp_path, kafka_bootstrap, topics)
    second = _simulated_ids(tmp_path, kafka_bootstrap, topics)
    assert not set(first) & set(second)
    seeded = _simulated_ids(tmp_path, kafka_bootstrap, topics, "--seed", "7")
    again = _simulated_ids(tmp_path, kafka_bootstrap, topics, "--seed", "7")
    assert not set(seeded) & set(again)
    assert all(s.startswith("sim-7-") for s in seeded + again)


def test_simulate_writes_its_chunks_under_the_data_dir(
    tmp_path: Path, kafka_bootstrap: str, topics: Topics
) -> None:
    done = run_tstore(
        "simulate",
        *("--sessions", "1", "--turns", "1", "--rate", "0"),
        cwd=tmp_path,
        TSTORE_KAFKA_BOOTSTRAP=kafka_bootstrap,
        TSTORE_TOPIC_PREFIX=topics.prefix,
    )
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "data" / "chunks").rglob("*.wav"))
    assert not (tmp_path / "tstore-chunks").exists()


def test_simulate_without_a_broker_fails_in_one_line_naming_its_address(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"
    said = _one_line(
        run_tstore("simulate", "--no-audio", cwd=tmp_path, TSTORE_KAFKA_BOOTSTRAP=address)
    )
    assert f"{address}: nothing listens there" in said
    assert "TSTORE_KAFKA_BOOTSTRAP" in said


async def test_rebuild_until_a_day_goes_to_the_store_process_as_utc(
    tmp_path: Path, kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str
) -> None:
    """The store's API takes only zoned times; the command line promises UTC for a bare day."""
    store = open_store(clickhouse_dsn, database)
    group = unique_name("live")
    rebuilds = RebuildService(
        bootstrap=kafka_bootstrap, topics=topics, store=store, base_group=group
    )
    async with serving(StoreState(store=store, rebuilds=rebuilds), queries=False) as url:
        planned = await asyncio.to_thread(
            run_tstore,
            *("rebuild", "--dry-run", "--until", "2026-11-01"),
            cwd=tmp_path,
            TSTORE_KAFKA_BOOTSTRAP=kafka_bootstrap,
            TSTORE_TOPIC_PREFIX=topics.prefix,
            TSTORE_CONSUMER_GROUP=group,
            TSTORE_HTTP_PORT=url.rsplit(":", 1)[1],
        )
    assert planned.returncode == 0, planned.stderr
    assert "rebuilding inside the store's process" in planned.stdout
    assert "replay up to 2026-11-01T00:00:00+00:00 and keep it frozen" in planned.stdout


def test_dev_kafka_refuses_a_port_another_process_listens_on(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_tstore("dev-kafka", "--port", str(port), cwd=tmp_path)
    assert done.returncode == 2
    assert f"{port} is in use by another process" in done.stderr
    assert "ready" not in done.stdout


def test_dev_kafka_stopped_by_sigterm_leaves_no_folder_behind(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with subprocess.Popen(
        [TSTORE, "dev-kafka"],
        env=tstore_env(tmp_path, TMPDIR=str(scratch)),
        stdout=subprocess.PIPE,
        text=True,
    ) as broker:
        assert broker.stdout is not None
        assert "ready" in broker.stdout.readline()
        assert list(scratch.glob("tstore-kafka-*"))
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(timeout=60) == 128 + signal.SIGTERM
    assert not list(scratch.glob("tstore-kafka-*"))


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 1
    assert len(said.splitlines()) == 1, said
    return said


def test_kafka_unreachable_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    said = _one_line(
        run_tstore("create-topics", cwd=tmp_path, TSTORE_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}")
    )
    assert "nothing listens there" in said
    assert "TSTORE_KAFKA_BOOTSTRAP" in said


def test_a_rebuild_with_kafka_unreachable_is_one_line_naming_its_address(tmp_path: Path) -> None:
    """No store process answers: the rebuild runs here, the first (which creates the store)
    and a dry run over the store it left."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        bootstrap = f"127.0.0.1:{closed.getsockname()[1]}"
    for asked in ((), ("--dry-run",)):
        said = _one_line(
            run_tstore("rebuild", *asked, cwd=tmp_path, TSTORE_KAFKA_BOOTSTRAP=bootstrap)
        )
        assert said == f"Kafka at {bootstrap} is unreachable: nothing listens there", said


def test_a_bad_setting_is_one_line_naming_its_variable(tmp_path: Path) -> None:
    said = _one_line(run_tstore("create-topics", cwd=tmp_path, TSTORE_LOG_FORMAT="xml"))
    assert "TSTORE_LOG_FORMAT" in said


def _events(log: Path) -> list[dict[str, object]]:
    lines = log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _wait_for(log: Path, event: str, within_s: float) -> dict[str, object]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        found = [e for e in _events(log) if e.get("event") == event]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no {event} within {within_s} s:\n{log.read_text()[-3000:]}")


def _project_env(tmp_path: Path, kafka_port: int) -> dict[str, str]:
    return tstore_env(
        tmp_path,
        TSTORE_KAFKA_BOOTSTRAP=f"127.0.0.1:{kafka_port}",
        TSTORE_HTTP_PORT=str(free_port()),
        TSTORE_LOG_FORMAT="json",
    )


def test_project_waits_for_kafka_and_logs_its_start_catch_up_and_stop(tmp_path: Path) -> None:
    """Started before the broker, ``tstore project`` retries with backoff, saying so, then
    projects once the broker is there, and says when it has caught up and when it stops."""
    port = free_port()
    log = tmp_path / "project.log"
    env = _project_env(tmp_path, port)
    with (
        log.open("w") as out,
        subprocess.Popen(
            [TSTORE, "project"], env=env, cwd=tmp_path, stdout=out, stderr=out
        ) as project,
    ):
        try:
            waiting = _wait_for(log, "projector_stopped", 60)
            assert "nothing listens there" in str(waiting["error"])
            assert float(str(waiting["retry_in_s"])) > 0
            with DevKafka(tmp_path / "kafka", port=port):
                _wait_for(log, "projector_started", 90)
                _wait_for(log, "caught_up", 60)
                project.send_signal(signal.SIGTERM)
                assert project.wait(timeout=60) == 0
        finally:
            if project.poll() is None:
                project.kill()
    said = [e.get("event") for e in _events(log)]
    assert "projectors_stopped" in said
    assert "Traceback" not in log.read_text()


def test_project_stops_on_sigterm_even_with_its_broker_gone(tmp_path: Path) -> None:
    """With the broker killed, aiokafka's consumer cannot stop cleanly: SIGTERM still ends
    the process, with exit code 0 and no traceback."""
    port = free_port()
    log = tmp_path / "project.log"
    env = _project_env(tmp_path, port)
    with (
        DevKafka(tmp_path / "kafka", port=port) as broker,
        log.open("w") as out,
        subprocess.Popen(
            [TSTORE, "project"], env=env, cwd=tmp_path, stdout=out, stderr=out
        ) as project,
    ):
        try:
            _wait_for(log, "caught_up", 90)
            broker.kill()
            time.sleep(2)
            project.send_signal(signal.SIGTERM)
            assert project.wait(timeout=GRACE_S * 2 + 15) == 0
        finally:
            if project.poll() is None:
                project.kill()
    assert "Traceback" not in log.read_text()


def test_a_store_started_while_its_broker_is_silent_says_it_is_behind_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    """With the broker paused (up, answering nothing), the check of its topics takes about
    a minute to fail: the store said it was current meanwhile (lag 0), and a SIGTERM waited
    for that check (35-43 s) rather than the grace the projectors have."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = _project_env(tmp_path, port)
    with DevKafka(tmp_path / "kafka", port=port) as broker, log.open("w") as out:
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            with subprocess.Popen(
                [TSTORE, "serve"], env=env, cwd=tmp_path, stdout=out, stderr=out
            ) as serve:
                try:
                    _wait_for(log, "serving", 60)
                    time.sleep(3)
                    freshness = httpx.get(
                        f"http://127.0.0.1:{env['TSTORE_HTTP_PORT']}/v1/freshness", timeout=10
                    ).json()
                    assert (freshness["lag_ms"] or 0) >= 2_000
                    serve.send_signal(signal.SIGTERM)
                    assert serve.wait(timeout=GRACE_S + 15) == 0
                finally:
                    if serve.poll() is None:
                        serve.kill()
        finally:
            os.kill(broker.pid, signal.SIGCONT)
    said = log.read_text()
    assert "Traceback" not in said
    assert "Unclosed" not in said
