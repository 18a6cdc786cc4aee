"""What the command line says about a bad argument, option or setting, and about a store that
is not there: one clear reason, a non-zero exit, nothing created on the way."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.core import TyperArgument, TyperOption
from typer.testing import CliRunner, Result

from queries.models import in_utc
from tstore.cli import app
from tstore.commands.common import moment

READS = (
    ["transcript", "s1"],
    ["sessions"],
    ["search", "hello"],
    ["incomplete"],
    ["generations"],
    ["stats"],
)
NEED_A_STORE = (
    *READS,
    ["rebuild", "--dry-run"],
    ["rebuild", "--discard"],
    ["rebuild", "--resume"],
)
"""With no store process answering, these open the store here and create none (a plain
rebuild creates it: it fills a store from the topics)."""


@pytest.fixture
def nobody_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    """No store process answers: the commands would open the store themselves."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("TSTORE_HTTP_PORT", str(port))
    monkeypatch.delenv("TSTORE_CLICKHOUSE_DSN", raising=False)


def _tstore(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _said(result: Result, code: int = 1) -> str:
    """What the command said, having exited with ``code``: a failure (1) in one line; usage
    errors and help, wherever their panel wrapped them, in one line of words."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code == 1:
        assert len(result.output.strip().splitlines()) == 1, result.output
    return " ".join(result.output.replace("│", " ").split())


@pytest.mark.usefixtures("nobody_serves")
@pytest.mark.parametrize("args", NEED_A_STORE, ids=" ".join)
def test_a_command_without_a_store_says_so_and_creates_nothing(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "data"
    monkeypatch.setenv("TSTORE_DATA_DIR", str(missing))
    said = _said(_tstore(*args))
    assert f"no store at {missing / 'clickhouse'} (TSTORE_DATA_DIR)" in said
    assert "`tstore serve` or `tstore project` creates one" in said
    assert "tstore demo" in said
    assert not missing.exists()


@pytest.mark.usefixtures("nobody_serves")
@pytest.mark.parametrize(
    "args", [*NEED_A_STORE, ["serve"], ["project"], ["rebuild"], ["simulate"]], ids=" ".join
)
def test_a_data_dir_that_is_a_file_is_named_in_one_line(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    afile = tmp_path / "data"
    afile.write_text("not a folder")
    monkeypatch.setenv("TSTORE_DATA_DIR", str(afile))
    said = _said(_tstore(*args))
    assert said.startswith("TSTORE_DATA_DIR:")
    assert f"{afile} is a file, not a folder" in said


@pytest.mark.usefixtures("nobody_serves")
@pytest.mark.parametrize("args", [["serve"], ["project"], ["simulate"]], ids=lambda a: a[0])
def test_a_data_dir_that_cannot_be_created_is_named_in_one_line(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TSTORE_DATA_DIR", "/proc/tstore-x")
    said = _said(_tstore(*args))
    assert said.startswith("TSTORE_DATA_DIR: cannot create /proc/tstore-x")
    assert "No such file or directory" in said


def test_an_empty_session_id_is_refused_as_such() -> None:
    said = _said(_tstore("transcript", ""), code=2)
    assert "the session id is empty" in said


@pytest.mark.parametrize(
    ("given", "taken"),
    [
        ("1800-01-01", datetime(1800, 1, 1, tzinfo=UTC)),
        ("9999-12-31", datetime(9999, 12, 31, tzinfo=UTC)),
        ("2300-06-01T00:00:00+02:00", datetime(2300, 5, 31, 22, tzinfo=UTC)),
    ],
)
def test_a_time_beyond_the_stores_is_taken_as_asked_as_the_service_takes_it(
    given: str, taken: datetime
) -> None:
    """The queries answer for it (the same rows as at the store's edge); refused here, the
    command line failed where the service answered."""
    assert moment(given) == taken


def test_a_time_utc_cannot_hold_is_refused_with_the_services_reason() -> None:
    said = _said(_tstore("sessions", "--since", "0001-01-01T00:00:00+05:00"), code=2)
    assert "Invalid value for '--since'" in said
    assert "0001-01-01T00:00:00+05:00 falls outside the years 1 to 9999 in UTC" in said
    with pytest.raises(ValueError, match="falls outside the years 1 to 9999 in UTC"):
        in_utc(datetime.fromisoformat("9999-12-31T23:00:00-05:00"))


def test_every_time_option_reads_iso_8601_in_utc_unless_zoned() -> None:
    assert moment("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert moment("2026-11-01 09:30") == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert moment("2026-11-01T09:30:00+02:00") == datetime(2026, 11, 1, 7, 30, tzinfo=UTC)
    assert moment("2026-11-01T09:30:00Z").tzinfo is UTC
    for wrong in ("yesterday", "2026-13-01", "0001-01-01T00:00:00+05:00"):
        with pytest.raises(typer.BadParameter):
            moment(wrong)


def _parameters(command: object, path: str) -> list[tuple[str, TyperArgument | TyperOption]]:
    """Every argument and option ``command`` and its subcommands declare (not ``--help``)."""
    found = [
        (path, p)
        for p in getattr(command, "params", [])
        if isinstance(p, TyperArgument | TyperOption)
    ]
    for name, sub in getattr(command, "commands", {}).items():
        found += _parameters(sub, f"{path} {name}")
    return found


PARAMETERS = _parameters(typer.main.get_command(app), "tstore")


@pytest.mark.parametrize(
    ("path", "param"), PARAMETERS, ids=[f"{path} {p.name}" for path, p in PARAMETERS]
)
def test_every_argument_and_option_has_help(path: str, param: TyperArgument | TyperOption) -> None:
    assert param.help, f"{path}: {param.name} has no help"


def test_incomplete_help_says_what_makes_a_session_incomplete_and_how_pages_end() -> None:
    said = _said(_tstore("incomplete", "--help"), code=0)
    for told in ("holes", "never stopped", "chunks", "abandoned", "session-id order"):
        assert told in said
    assert "may hold fewer, or none, and still give a cursor" in said


@pytest.mark.parametrize(
    ("args", "option", "kinds"),
    [
        (
            ["sessions", "--state", "dead"],
            "--state",
            "open, sealed, sealed_with_holes or abandoned",
        ),
        (["stats", "--bucket", "week"], "--bucket", "minute, hour or day"),
        (["stats", "--by", "user"], "--by", "bot, role, language or framework"),
        (["search", "hi", "--role", "bot"], "--role", "user or assistant"),
    ],
)
def test_a_value_not_among_an_option_s_kinds_names_them(
    args: list[str], option: str, kinds: str
) -> None:
    said = _said(_tstore(*args), code=2)
    assert option in said
    assert kinds in said


def test_an_empty_search_says_what_to_give() -> None:
    said = _said(_tstore("search", " "), code=2)
    assert 'the search is empty; give words or a "quoted phrase"' in said
