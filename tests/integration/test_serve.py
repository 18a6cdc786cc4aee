"""``tstore serve`` as the real process it is in production: it owns the embedded store,
projects the topics, and every other command reads through its HTTP API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from consumers.topics_admin import ensure_topics
from producers import EventPublisher
from schemas import Topics, TurnStarted, TurnStopped
from schemas.models import Event
from tests.conftest import TEST_PARTITIONS, unique_name
from tests.events import chunk, envelope
from tstore.cli import app

pytestmark = pytest.mark.integration

TSTORE = str(Path(sys.executable).with_name("tstore"))
STARTS_WITHIN_S = 180.0
"""How long a store process may take to open its store (two busy cores, a shared broker)."""
STOPS_WITHIN_S = 15.0
FAILS_WITHIN_S = 60.0
"""A process that refuses to start: imports, settings, one check (generous: busy machine)."""
DSN_PASSWORD = "s3cretpw"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment(**settings: str) -> dict[str, str]:
    """This process's environment without any ``TSTORE_*`` setting, plus ``settings``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("TSTORE_")}
    return kept | {"PYTHONUNBUFFERED": "1"} | settings


def _store_settings(kafka_bootstrap: str, folder: Path, **more: str) -> dict[str, str]:
    name = unique_name("serve")
    return {
        "TSTORE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "TSTORE_TOPIC_PREFIX": f"{name}.",
        "TSTORE_TOPIC_PARTITIONS": str(TEST_PARTITIONS),
        "TSTORE_CONSUMER_GROUP": name,
        "TSTORE_DATA_DIR": str(folder / "data"),
        "TSTORE_HTTP_PORT": str(_free_port()),
        **more,
    }


@dataclass
class StoreProcess:
    """A running ``tstore serve`` and where its output goes."""

    process: subprocess.Popen[bytes]
    settings: dict[str, str]
    stdout: Path
    stderr: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings['TSTORE_HTTP_PORT']}"

    @property
    def topics(self) -> Topics:
        return Topics(self.settings["TSTORE_TOPIC_PREFIX"])

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTS_WITHIN_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"tstore serve ended ({self.process.returncode}):\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        pytest.fail(f"tstore serve was not ready within {STARTS_WITHIN_S}s:\n{self.output()}")

    def terminate(self) -> int:
        """SIGTERM, and the exit code (None is turned into a failure after the deadline)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOPS_WITHIN_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"tstore serve did not stop within {STOPS_WITHIN_S}s of SIGTERM")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _serve(folder: Path, settings: dict[str, str], *args: str) -> StoreProcess:
    folder.mkdir(parents=True, exist_ok=True)
    stdout, stderr = folder / "stdout.log", folder / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [TSTORE, "serve", *args],
            env=_environment(**settings),
            cwd=folder,
            stdout=out,
            stderr=err,
        )
    return StoreProcess(process, settings, stdout, stderr)


def _tstore(*args: str, settings: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TSTORE, *args],
        env=_environment(**settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=FAILS_WITHIN_S * 2,
        check=False,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    said = (result.stdout + result.stderr).strip()
    assert "Traceback" not in said, said
    assert len(said.splitlines()) == 1, said
    return said


def _session(session_id: str, at: datetime) -> list[Event]:
    """A user turn about a zebra, an answer that never stopped, and (after a hole at seq 3)
    an audio chunk: incomplete twice over."""
    return [
        TurnStarted(
            **envelope(0, session_id, occurred_at=at), turn_id="u1", role="user", started_at=at
        ),
        TurnStopped(
            **envelope(1, session_id, occurred_at=at + timedelta(seconds=2)),
            turn_id="u1",
            role="user",
            started_at=at,
            stopped_at=at + timedelta(seconds=2),
            text="My zebra-striped parcel never arrived",
        ),
        TurnStarted(
            **envelope(2, session_id, occurred_at=at + timedelta(seconds=3)),
            turn_id="a1",
            role="assistant",
            started_at=at + timedelta(seconds=3),
        ),
        chunk(seq=4, session_id=session_id),
    ]


async def _publish(bootstrap: str, topics: Topics, events: list[Event]) -> None:
    await ensure_topics(bootstrap, topics, partitions=TEST_PARTITIONS)
    async with EventPublisher(bootstrap, topics) as publisher:
        await publisher.publish_all(events)


@pytest.fixture(scope="module")
def served(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StoreProcess]:
    """One ``tstore serve`` on the session's broker, with a store of its own."""
    folder = tmp_path_factory.mktemp("serve")
    store = _serve(folder, _store_settings(kafka_bootstrap, folder))
    try:
        store.wait_ready()
        yield store
    finally:
        store.kill()


def test_the_command_line_reads_a_published_session_through_the_store_process(
    served: StoreProcess, kafka_bootstrap: str
) -> None:
    session_id = f"serve-{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    asyncio.run(_publish(kafka_bootstrap, served.topics, _session(session_id, at)))

    deadline = time.monotonic() + 120
    turns: list[object] = []
    while time.monotonic() < deadline and len(turns) < 2:
        answer = httpx.get(f"{served.url}/v1/sessions/{session_id}/turns", timeout=30)
        turns = answer.json().get("turns", []) if answer.status_code == 200 else []
        time.sleep(0.5)
    assert len(turns) == 2, f"not projected within 120s:\n{served.output()}"

    # The store's data path is held by the process: a command that opened it itself would
    # fail, so each answer below came through the HTTP API.
    env = {**served.settings}
    runner = CliRunner()
    transcript = runner.invoke(app, ["transcript", session_id], env=env)
    assert transcript.exit_code == 0, transcript.output
    assert "user" in transcript.output
    assert "My zebra-striped parcel never arrived" in transcript.output
    assert "assistant (" in transcript.output
    assert "open" in transcript.output

    listed = runner.invoke(app, ["sessions"], env=env)
    assert listed.exit_code == 0, listed.output
    assert session_id in listed.output
    nobody = runner.invoke(app, ["sessions", "--bot", "no-such-bot"], env=env)
    assert nobody.output == "no session matches\n"

    found = runner.invoke(app, ["search", "ZEBRA"], env=env)
    assert found.exit_code == 0, found.output
    assert session_id in found.output
    assert "zebra-striped" in found.output

    missing = runner.invoke(app, ["incomplete"], env=env)
    assert missing.exit_code == 0, missing.output
    assert f"{session_id}: open, 4 of 5 events; missing seq 3; open turns a1" in missing.output
    of_nobody = runner.invoke(app, ["incomplete", "--bot", "no-such-bot"], env=env)
    assert of_nobody.output == "no incomplete session of bot no-such-bot\n"

    stats = runner.invoke(app, ["stats", "--bucket", "day", "--by", "bot"], env=env)
    assert stats.exit_code == 0, stats.output
    assert "response_latency_ms" in stats.output, "the definitions are printed"
    assert "bucket (UTC)" in stats.output
    wrong = runner.invoke(app, ["stats", "--bucket", "week"], env=env)
    assert wrong.exit_code != 0
    assert "--bucket" in wrong.output


def test_a_command_that_cannot_reach_the_store_process_says_the_store_is_held(
    served: StoreProcess, tmp_path: Path
) -> None:
    elsewhere = {**served.settings, "TSTORE_HTTP_PORT": str(_free_port())}
    result = _tstore("transcript", "x", settings=elsewhere, cwd=tmp_path)
    assert result.returncode == 1
    said = _one_line(result)
    assert f"held by process {served.process.pid}" in said


def test_a_second_store_process_on_the_same_port_fails_at_once_naming_the_port(
    served: StoreProcess, kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = served.settings["TSTORE_HTTP_PORT"]
    settings = _store_settings(kafka_bootstrap, tmp_path, TSTORE_HTTP_PORT=port)
    began = time.monotonic()
    result = _tstore("serve", settings=settings, cwd=tmp_path)
    assert time.monotonic() - began < FAILS_WITHIN_S
    assert result.returncode == 1
    said = _one_line(result)
    assert port in said
    assert "TSTORE_HTTP_PORT" in said
    assert served.process.poll() is None, "the first store process must be left alone"


def test_sigterm_stops_the_store_process_with_exit_code_0(served: StoreProcess) -> None:
    """Last in this module: it ends the module's store process."""
    assert httpx.get(f"{served.url}/readyz", timeout=30).status_code == 200
    assert served.terminate() == 0, served.output()
    assert "Traceback" not in served.output()


def test_listening_beyond_loopback_without_a_token_is_refused_naming_the_setting(
    tmp_path: Path,
) -> None:
    settings = {"TSTORE_DATA_DIR": str(tmp_path / "data"), "TSTORE_HTTP_PORT": str(_free_port())}
    result = _tstore("serve", "--host", "0.0.0.0", settings=settings, cwd=tmp_path)
    assert result.returncode == 1
    assert "TSTORE_API_TOKEN" in _one_line(result)
    assert not (tmp_path / "data").exists(), "nothing may be opened before the refusal"


def test_a_taken_port_is_refused_before_the_data_folder_is_created(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        settings = {"TSTORE_DATA_DIR": str(tmp_path / "data"), "TSTORE_HTTP_PORT": port}
        result = _tstore("serve", "--port", port, settings=settings, cwd=tmp_path)
    assert result.returncode == 1
    said = _one_line(result)
    assert f"127.0.0.1:{port}" in said
    assert "--port" in said
    assert not (tmp_path / "data").exists(), "nothing may be created before the refusal"


def test_with_a_token_every_v1_route_needs_it_and_the_token_never_reaches_the_log(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    settings = _store_settings(
        kafka_bootstrap, tmp_path, TSTORE_API_TOKEN=token, TSTORE_LOG_FORMAT="json"
    )
    store = _serve(tmp_path / "store", settings, "--host", "0.0.0.0")
    try:
        store.wait_ready()
        bearer = {"Authorization": f"Bearer {token}"}
        for headers in ({}, {"Authorization": f"Bearer {token}x"}, {"Authorization": token}):
            refused = httpx.get(f"{store.url}/v1/sessions", headers=headers, timeout=30)
            assert refused.status_code == 401, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json()["status"] == 401
        admin = httpx.get(f"{store.url}/v1/admin/generations", timeout=30)
        assert admin.status_code == 401
        assert httpx.get(f"{store.url}/v1/sessions", headers=bearer, timeout=30).status_code == 200
        assert httpx.get(f"{store.url}/healthz", timeout=30).status_code == 200
        assert httpx.get(f"{store.url}/readyz", timeout=30).status_code == 200
        # A request that fails inside the store (its traceback is logged) and carries the token
        # in its header and its query.
        httpx.get(
            f"{store.url}/v1/search",
            params={"q": token, "until": "0001-01-01T00:00:00Z"},
            headers=bearer,
            timeout=30,
        )

        runner = CliRunner()
        with_token = runner.invoke(app, ["sessions"], env=settings)
        assert with_token.exit_code == 0, with_token.output
        wrong = runner.invoke(app, ["sessions"], env={**settings, "TSTORE_API_TOKEN": "nope"})
        assert wrong.exit_code == 1
        assert "TSTORE_API_TOKEN" in wrong.output
        assert token not in wrong.output

        assert store.terminate() == 0, store.output()
    finally:
        store.kill()
    logged = store.output()
    assert token not in logged
    events = [json.loads(line) for line in store.stderr.read_text().splitlines() if line[:1] == "{"]
    assert any(e.get("event") == "serving" for e in events), logged


@pytest.mark.parametrize(
    ("command", "log_format"),
    [
        (["serve"], "json"),
        (["serve"], "console"),
        (["transcript", "x"], "json"),
        (["sessions"], "console"),
    ],
)
def test_a_dsn_password_never_reaches_the_output_of_a_command_that_fails_to_connect(
    command: list[str], log_format: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    settings = _store_settings(
        kafka_bootstrap,
        tmp_path,
        TSTORE_CLICKHOUSE_DSN=f"http://u:{DSN_PASSWORD}@127.0.0.1:1/",
        TSTORE_API_TOKEN=token,
        TSTORE_LOG_FORMAT=log_format,
    )
    result = _tstore(*command, settings=settings, cwd=tmp_path)
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    assert "cannot open the store: ClickHouse at http://127.0.0.1:1 is unreachable" in said
    assert "Traceback" not in said
    assert DSN_PASSWORD not in said
    assert token not in said


def _rebuild_status(store: StoreProcess, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The store process's rebuild status once ``until`` holds of it (within two minutes)."""
    deadline = time.monotonic() + 120
    while True:
        status: dict[str, Any] = httpx.get(f"{store.url}/v1/admin/rebuild", timeout=30).json()
        if until(status):
            return status
        assert time.monotonic() < deadline, f"{status}\n{store.output()[-3000:]}"
        time.sleep(0.05)


def _replayed(status: dict[str, Any]) -> int:
    return sum(offset for _, _, offset in status["positions"])


def test_sigterm_mid_rebuild_stops_the_replay_between_batches_and_a_resume_finishes_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The rebuild ran on the process's event loop, and was left to be cancelled at its end,
    after the service had stopped, with nothing said, and the process did not stop within
    15 s. Batches of one event make the replay of 800 last seconds; the resume, in batches
    of the default size, is quick."""
    settings = _store_settings(kafka_bootstrap, tmp_path)
    one_by_one = settings | {"TSTORE_BATCH_MAX_EVENTS": "1"}
    topics = Topics(settings["TSTORE_TOPIC_PREFIX"])
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    events = [e for n in range(200) for e in _session(f"stop-{n:03d}", at + timedelta(seconds=n))]
    asyncio.run(_publish(kafka_bootstrap, topics, events))
    first = _serve(tmp_path / "first", one_by_one)
    try:
        first.wait_ready()
        httpx.post(f"{first.url}/v1/admin/rebuild", json={}, timeout=60).raise_for_status()
        _rebuild_status(first, lambda s: _replayed(s) > 0)
        assert first.terminate() == 0, first.output()
    finally:
        first.kill()
    said = first.output()
    assert "Traceback" not in said, said
    assert "rebuild_stopped" in said, said
    assert "tstore rebuild --resume" in said

    again = _serve(tmp_path / "again", settings)
    try:
        again.wait_ready()
        resume = httpx.post(f"{again.url}/v1/admin/rebuild", json={"resume": True}, timeout=60)
        assert resume.status_code == 200, resume.text
        done = _rebuild_status(again, lambda s: s["state"] != "running")
        assert (done["state"], done["summary"]["generation_state"]) == ("done", "live"), done
        assert 0 < done["summary"]["events"] < len(events), "the resume read the rest only"
        assert again.terminate() == 0, again.output()
    finally:
        again.kill()
