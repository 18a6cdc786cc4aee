"""The command line as a newcomer meets it: what each command says, with a real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import Topics
from tests.commands import run_tstore

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
