"""How the command line shows and reads its options: a flag shown as taking no value, and a
port refused, naming the option, wherever a command takes one."""

from __future__ import annotations

import pytest
import typer
from typer.core import TyperOption
from typer.testing import CliRunner

from tstore.cli import app


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command and group under ``command``, its own included."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


ROOT = typer.main.get_command(app)
COMMANDS = _commands(ROOT)
WITH_A_PORT = [
    (name,)
    for name, sub in getattr(ROOT, "commands", {}).items()
    if any(isinstance(p, TyperOption) and "--port" in p.opts for p in sub.params)
]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(("tstore", *path)))
def test_help_shows_no_value_after_a_flag(path: tuple[str, ...]) -> None:
    """typer 0.29 printed ``<bool>`` after every flag (``--dry-run <bool>``), and a user who
    then gave one (``--dry-run true``) was refused the extra argument."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help" in result.output


def test_rebuild_help_shows_its_flags_bare() -> None:
    result = CliRunner().invoke(app, ["rebuild", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    (dry_run,) = [line for line in result.output.splitlines() if "--dry-run" in line]
    assert "<" not in dry_run, dry_run


def test_every_command_with_a_port_is_found() -> None:
    assert {p[0] for p in WITH_A_PORT} >= {
        "dev-kafka",
        "dev-s3",
        "dev-gcs",
        "dev-azure",
        "serve",
        "project",
        "demo",
    }


@pytest.mark.parametrize("path", WITH_A_PORT, ids=" ".join)
@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_no_socket_can_take_is_refused_naming_the_option(
    path: tuple[str, ...], port: str
) -> None:
    """``dev-kafka --port 99999`` ended in ``OverflowError: bind(): port must be 0-65535``."""
    result = CliRunner().invoke(app, [*path, "--port", port], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "Invalid value for '--port'" in result.output
