from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from schemas.registry import SCHEMA_DIR
from tstore.cli import app


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
