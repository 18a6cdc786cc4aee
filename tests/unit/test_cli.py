from __future__ import annotations

import json
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from consumers.projections import PROJECTIONS
from consumers.storage.generations import GenerationError
from producers import ProducerStats
from schemas.registry import SCHEMA_DIR
from service.answers import GenerationInfo
from tstore.cli import app
from tstore.commands.kafka import undelivered
from tstore.commands.rebuild import _show, cancelled


def test_help_lists_every_subcommand() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "dev-kafka",
        "create-topics",
        "project",
        "rebuild",
        "generations",
        "schemas",
        "simulate",
        "transcript",
        "incomplete",
        "stats",
        "demo",
    ):
        assert command in result.output


def test_schemas_check_passes_on_the_shipped_folder() -> None:
    result = CliRunner().invoke(app, ["schemas", "check"])
    assert result.exit_code == 0, result.output
    assert "TurnStopped: versions v1, v2 compatible" in result.output


def test_schemas_check_fails_naming_the_version_a_change_would_strand(tmp_path: Path) -> None:
    folder = tmp_path / "avro"
    shutil.copytree(SCHEMA_DIR, folder)
    schema = json.loads((folder / "turn_stopped.v2.avsc").read_text())
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "text"]
    schema["fields"].append({"name": "confidence", "type": "double"})
    (folder / "turn_stopped.v3.avsc").write_text(json.dumps(schema))
    result = CliRunner().invoke(app, ["schemas", "check", "--folder", str(folder)])
    assert result.exit_code == 1
    assert "TurnStopped v3 cannot read events written with TurnStopped v1" in result.output
    assert "confidence" in result.output


def test_rebuild_help_names_the_projections_without_markup() -> None:
    result = CliRunner().invoke(app, ["rebuild", "--help"], terminal_width=120)
    assert result.exit_code == 0
    for name in PROJECTIONS:
        assert name in result.output
    assert "[bold" not in result.output
    assert "[/" not in result.output


def test_help_fills_each_paragraph_to_the_terminal_s_width() -> None:
    """A docstring's own line breaks are not kept: at 80 columns they left a word or two
    alone on every other line."""
    result = CliRunner().invoke(app, ["incomplete", "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    lines = [line.strip() for line in result.output.splitlines()]
    assert "A session is incomplete when events are missing (holes in its seq), a turn" in lines
    assert "never stopped, it ended with chunks other than its end declared (missing or" in lines


@pytest.mark.parametrize(
    ("alone", "flags", "excluded"),
    [
        ("--discard", ["--resume"], "--resume"),
        ("--discard", ["--dry-run"], "--dry-run"),
        ("--discard", ["--allow-loss", "--only", "transcripts"], "--allow-loss, --only"),
        ("--discard", ["--until", "2026-11-01T00:00:00Z"], "--until"),
        ("--cancel", ["--resume"], "--resume"),
        ("--cancel", ["--follow", "--only", "transcripts"], "--only, --follow"),
    ],
)
def test_a_discard_or_a_cancel_with_any_other_option_is_refused_in_one_line(
    alone: str, flags: list[str], excluded: str
) -> None:
    """Above all ``--discard --dry-run``, which promises that nothing changes: it discarded
    all the same."""
    result = CliRunner().invoke(app, ["rebuild", alone, *flags])
    assert result.exit_code == 1
    assert result.output.strip() == f"{alone} excludes {excluded}: it takes no other option"


def test_a_cancel_with_no_store_process_says_where_it_looked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rebuild of its own process stops with it (Ctrl+C): there is nothing to cancel."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("TSTORE_HTTP_PORT", str(port))
    result = CliRunner().invoke(app, ["rebuild", "--cancel"])
    assert result.exit_code == 1
    assert result.output.startswith(f"no store process answers at http://127.0.0.1:{port}")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("ended", "said"),
    [
        ({"state": "running"}, "too late: the rebuild of generation 2 has replayed the topics"),
        (
            {"state": "done", "summary": {"generation_state": "live"}},
            "too late: the rebuild of generation 2 ended, live",
        ),
        ({"state": "failed", "error": "generation 2 does not match"}, "generation 2 does not"),
    ],
)
def test_a_cancel_that_did_not_take_fails_saying_why(ended: dict[str, Any], said: str) -> None:
    """A script that asked for the cancel must not take a cut-over, or a failure, for it."""
    with pytest.raises(GenerationError, match=f"^{said}"):
        cancelled({"plan": {"generation": 2}, **ended})


def test_generations_are_listed_in_full_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    created = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    _show(
        [
            GenerationInfo(
                generation=12,
                state="live",
                shown_for=["transcripts", "audio_chunks", "session_events"],
                rows={"transcripts": 10_000_000, "audio_chunks": 20_000_000},
                bytes_on_disk=1_234_567_890,
                created_at=created,
                cut_over_at=created,
                until=None,
            )
        ]
    )
    shown = capsys.readouterr().out
    assert "transcripts, audio_chunks, session_events" in shown
    assert "audio_chunks 20000000, transcripts 10000000" in shown
    assert "2026-12-02 05:00:00" in shown


def _closed_producer(**left: int) -> ProducerStats:
    counts = {"backlog": 0, "spool_bytes": 0, "dropped": 0} | left
    return ProducerStats(published=25_000, spooled=15_000, errors=0, **counts)


def test_simulate_succeeds_when_a_burst_went_through_the_spool_and_was_all_delivered() -> None:
    assert undelivered(_closed_producer()) is None


@pytest.mark.parametrize(
    ("left", "said"),
    [
        ({"spool_bytes": 4096}, "4096 bytes in the spool"),
        ({"dropped": 3}, "3 dropped"),
        ({"backlog": 2}, "2 in memory"),
    ],
)
def test_simulate_fails_on_what_kafka_has_not_taken(left: dict[str, int], said: str) -> None:
    shortfall = undelivered(_closed_producer(**left))
    assert shortfall is not None
    assert said in shortfall
