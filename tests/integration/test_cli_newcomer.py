"""The command line as a newcomer meets it: what each command says, with a real broker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from schemas import Topics
from tests.commands import TSTORE, run_tstore

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


def test_simulate_prints_new_session_ids_each_run_unless_seeded(
    tmp_path: Path, kafka_bootstrap: str, topics: Topics
) -> None:
    first = _simulated_ids(tmp_path, kafka_bootstrap, topics)
    second = _simulated_ids(tmp_path, kafka_bootstrap, topics)
    assert not set(first) & set(second)
    seeded = _simulated_ids(tmp_path, kafka_bootstrap, topics, "--seed", "7")
    assert seeded == _simulated_ids(tmp_path, kafka_bootstrap, topics, "--seed", "7")


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSTORE_")}
    with subprocess.Popen(
        [TSTORE, "dev-kafka"],
        env=env | {"TMPDIR": str(scratch)},
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


def test_a_bad_setting_is_one_line_naming_its_variable(tmp_path: Path) -> None:
    said = _one_line(run_tstore("create-topics", cwd=tmp_path, TSTORE_LOG_FORMAT="xml"))
    assert "TSTORE_LOG_FORMAT" in said
