from __future__ import annotations

from typer.testing import CliRunner

from tstore.cli import app


def test_help_lists_every_subcommand() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "dev-kafka",
        "create-topics",
        "project",
        "simulate",
        "transcript",
        "incomplete",
        "demo",
    ):
        assert command in result.output
