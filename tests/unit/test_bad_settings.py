"""A bad setting is said in one line that names it, never with a credential given beside it or
in it, wherever the settings are built: the command line, the benchmarks, the examples.

pydantic's own error quotes every value it checked (``input_value=``): the DSN with its
password, or for a check of several settings the whole environment, the API token included.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from pydantic import ValidationError

from tstore.commands.common import settings as command_settings
from tstore.settings import BadSettingError, Settings

ROOT = Path(__file__).parents[2]
SECRET = "Sup3rS3cretPw"
TOKEN = "tok-9f8e7d6c5b4a"
DSN = f"https://user:{SECRET}@clickhouse.example:8443"

CASES = {
    "a bad setting beside the DSN": (
        {"TSTORE_CLICKHOUSE_DSN": DSN, "TSTORE_HTTP_PORT": "eighty"},
        "TSTORE_HTTP_PORT: Input should be a valid integer",
    ),
    "the DSN itself": (
        {"TSTORE_CLICKHOUSE_DSN": f"htps://u:{SECRET}@ch"},
        "TSTORE_CLICKHOUSE_DSN: unknown scheme",
    ),
    "the DSN, its password percent-encoded": (
        {"TSTORE_CLICKHOUSE_DSN": f"clickhouse://user:{SECRET}%40x@host:9000"},
        "TSTORE_CLICKHOUSE_DSN: unknown scheme",
    ),
    "a check of several settings, with the token and the passwords in the environment": (
        {
            "TSTORE_CLICKHOUSE_DSN": DSN,
            "TSTORE_API_TOKEN": TOKEN,
            "TSTORE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "TSTORE_KAFKA_USERNAME": "bot",
        },
        "TSTORE_KAFKA_PASSWORD: SASL_SSL logs in",  # the username is set
    ),
}


def _environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in list(os.environ):
        if name.upper().startswith("TSTORE_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _holds_no_credential(said: str) -> None:
    assert SECRET not in said
    assert TOKEN not in said
    assert "Traceback" not in said
    assert "input_value" not in said


QUOTED = [
    "the DSN itself",
    "a check of several settings, with the token and the passwords in the environment",
]


@pytest.mark.parametrize("case", QUOTED)
def test_pydantics_own_error_quotes_the_credentials(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What every program printed that built ``Settings()`` outside the command line (a long
    value is cut in the middle, so a long DSN showed part of its password)."""
    _environment(monkeypatch, CASES[case][0])
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert SECRET in str(raised.value) or TOKEN in str(raised.value)


@pytest.mark.parametrize(("env", "named"), CASES.values(), ids=CASES.keys())
def test_loading_says_the_bad_setting_in_one_line_without_credentials(
    env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _environment(monkeypatch, env)
    with pytest.raises(BadSettingError) as raised:
        Settings.load()
    said = str(raised.value)
    assert said.startswith(f"bad setting: {named}")
    assert len(said.splitlines()) == 1
    assert raised.value.code == said  # uncaught, Python prints it alone and exits with 1
    _holds_no_credential(said)


@pytest.mark.parametrize(("env", "named"), CASES.values(), ids=CASES.keys())
def test_the_command_line_says_it_in_one_line_without_credentials(
    env: dict[str, str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _environment(monkeypatch, env)
    with pytest.raises(typer.Exit):
        command_settings()
    said = capsys.readouterr().err.strip()
    assert said.startswith(f"bad setting: {named}")
    assert len(said.splitlines()) == 1
    _holds_no_credential(said)


PROGRAMS = {
    "a benchmark": [sys.executable, "-m", "bench.query", "--sessions", "1"],
    "an example bot": [sys.executable, "-m", "examples.pipecat_bot"],
}


@pytest.mark.parametrize("program", PROGRAMS.values(), ids=PROGRAMS.keys())
def test_programs_end_with_the_one_line_and_exit_code_1(program: list[str]) -> None:
    """Run as a user would (``python -m``): before they did, a raw traceback with the DSN."""
    env, named = CASES[
        "a check of several settings, with the token and the passwords in the environment"
    ]
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("TSTORE_")}
    done = subprocess.run(
        program, cwd=ROOT, env=clean | env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if "bad setting" in line]
    assert lines == [f"bad setting: {named} with a username and a password"], done.stderr
    _holds_no_credential(done.stderr)


def _builds_settings(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "Settings")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "Settings")
        )
    ]


def test_programs_build_their_settings_only_through_load() -> None:
    """``Settings()`` raises pydantic's error, with the values; only ``Settings.load`` and the
    tests (which check that error) may call it."""
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(ROOT.rglob("*.py"))
        if not {".venv", "tests", "node_modules"} & set(path.relative_to(ROOT).parts)
        and path != ROOT / "tstore" / "settings.py"
        for line in _builds_settings(path)
    ]
    assert not found, f"use Settings.load(): {found}"
