"""Failures a user meets with the store's processes, its ClickHouse server and its chunk store:
each said in one line naming what was wrong, never a library's log lines or a traceback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from audio.stores import ChunkWriteError
from consumers.storage.clickhouse import Store
from service.app import create_app
from service.state import StoreState
from tests.commands import run_tstore
from tests.integration.serving import serving
from tstore.cli import app
from tstore.commands import kafka

READS = (
    ["sessions"],
    ["search", "order"],
    ["incomplete"],
    ["stats"],
    ["transcript", "room/7"],
)


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port bound but never listened on: every connection to it is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


def _one_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("queries", [True, False])
def test_health_and_readiness_say_whether_the_process_answers_queries(queries: bool) -> None:
    opened = StoreState(store=cast(Store, object()))
    with TestClient(create_app(opened, queries=queries)) as http:
        for path in ("/healthz", "/readyz"):
            assert http.get(path).json()["queries"] is queries, path


async def test_a_read_asked_of_a_projecting_process_says_it_serves_no_queries(
    tmp_path: Path,
) -> None:
    """``tstore project`` has no query API: the reads printed its "Not Found", and a transcript
    read as if the session were missing."""
    async with serving(StoreState(), queries=False) as url:
        port = url.rsplit(":", 1)[1]
        done = await asyncio.gather(
            *(
                asyncio.to_thread(run_tstore, *args, cwd=tmp_path, TSTORE_HTTP_PORT=port)
                for args in READS
            )
        )
    for args, result in zip(READS, done, strict=True):
        assert result.returncode == 1, (args, result.stderr)
        said = result.stderr.strip()
        assert said.count("\n") == 0, (args, said)
        assert f"the process answering at {url} (TSTORE_HTTP_PORT) is `tstore project`" in said
        assert "serves no queries and holds the embedded store" in said
        assert "run `tstore serve`" in said
        assert "Not Found" not in said


async def test_beside_a_projecting_process_a_server_s_store_is_read_here(
    tmp_path: Path, dead_port: int
) -> None:
    """With a ClickHouse server any process may read the store: the reads do so themselves, as
    when nothing answers (here they find the server out of reach)."""
    async with serving(StoreState(), queries=False) as url:
        done = await asyncio.to_thread(
            run_tstore,
            "sessions",
            cwd=tmp_path,
            TSTORE_HTTP_PORT=url.rsplit(":", 1)[1],
            TSTORE_CLICKHOUSE_DSN=f"http://127.0.0.1:{dead_port}",
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("cannot open the store: ClickHouse at"), done.stderr


def test_an_unreachable_clickhouse_server_is_one_line_without_its_password(
    tmp_path: Path, dead_port: int
) -> None:
    """Not urllib3's retry and clickhouse-connect's warning, then its error with the query's id
    and the attempt's number."""
    done = run_tstore(
        "sessions",
        cwd=tmp_path,
        TSTORE_CLICKHOUSE_DSN=f"http://reader:s3cret@127.0.0.1:{dead_port}",
        TSTORE_HTTP_PORT=str(dead_port),
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        f"cannot open the store: ClickHouse at http://127.0.0.1:{dead_port} is unreachable "
        "(connection refused)"
    )


def test_a_chunk_store_that_refuses_writes_fails_the_simulation_before_it_publishes(
    tmp_path: Path, dead_port: int
) -> None:
    """The chunk store is tried before Kafka is even asked (``dead_port`` would be refused):
    a failed write once left a call's first event on the topics, its session open."""
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, where the chunks' folder would be")
    store = (blocked / "chunks").as_uri()
    result = CliRunner().invoke(
        app,
        ["simulate", "--sessions", "1", "--turns", "1"],
        env={
            "TSTORE_DATA_DIR": str(tmp_path / "data"),
            "TSTORE_CHUNK_STORE": store,
            "TSTORE_KAFKA_BOOTSTRAP": f"127.0.0.1:{dead_port}",
        },
    )
    said = _one_line(result)
    assert said.startswith(f"the chunk store {store} (TSTORE_CHUNK_STORE) cannot be written (")
    assert said.endswith("; nothing was published")


class _Producer:
    """Takes events and sends none: the run fails before it would matter."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    async def __aenter__(self) -> _Producer:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        return None


def test_a_chunk_store_failing_during_the_run_says_what_was_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def reachable(_config: object) -> None:
        return None

    async def failing_run(*_args: Any, **_kwargs: Any) -> list[str]:
        raise ChunkWriteError("file:///chunks/s1/user-000000.wav", "No space left on device")

    monkeypatch.setattr(kafka, "_reachable", reachable)
    monkeypatch.setattr(kafka, "TranscriptProducer", _Producer)
    monkeypatch.setattr(kafka, "run_simulation", failing_run)
    result = CliRunner().invoke(
        app, ["simulate", "--sessions", "1"], env={"TSTORE_DATA_DIR": str(tmp_path)}
    )
    said = _one_line(result)
    assert said == (
        f"the chunk store {(tmp_path / 'chunks').as_uri()} (TSTORE_DATA_DIR) failed during the "
        "run (No space left on device): the events published before it stay on the topics, "
        "their calls open until abandoned"
    )
    assert (tmp_path / "chunks" / kafka.WRITE_CHECK).exists()
