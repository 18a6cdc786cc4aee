"""What the command line says about a bad argument or option: one clear reason, a non-zero
exit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import typer
from typer.testing import CliRunner, Result

from tstore.cli import app
from tstore.commands.common import moment


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


@pytest.mark.parametrize(
    ("args", "option", "given"),
    [
        (["sessions", "--since", "1800-01-01", "--until", "1850-01-01"], "--since", "1800-01-01"),
        (["search", "hi", "--until", "2400-01-01"], "--until", "2400-01-01"),
        (["stats", "--since", "2300-06-01T00:00:00+02:00"], "--since", "2300-06-01"),
        (["rebuild", "--until", "1899-12-31"], "--until", "1899-12-31"),
    ],
)
def test_a_time_out_of_range_is_named_with_its_option(
    args: list[str], option: str, given: str
) -> None:
    said = _said(_tstore(*args), code=2)
    assert f"Invalid value for '{option}': {given}" in said
    assert "is out of the supported range, 1900-01-01 to 2262-01-01 UTC" in said
    assert "must be before" not in said


def test_every_time_option_reads_iso_8601_in_utc_unless_zoned() -> None:
    assert moment("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert moment("2026-11-01 09:30") == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert moment("2026-11-01T09:30:00+02:00") == datetime(2026, 11, 1, 7, 30, tzinfo=UTC)
    assert moment("2026-11-01T09:30:00Z").tzinfo is UTC
    for wrong in ("yesterday", "2026-13-01", "0001-01-01T00:00:00+05:00"):
        with pytest.raises(typer.BadParameter):
            moment(wrong)
