from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from schemas.models import EVENT_MODELS
from schemas.registry import SchemaFolderError, SchemaRegistry


def test_every_model_has_a_schema_and_latest_is_highest_version() -> None:
    registry = SchemaRegistry.from_folder()
    for model in EVENT_MODELS:
        history = registry.history(model.schema_name)
        assert history, model.schema_name
        assert registry.latest(model.schema_name) == history[-1]
        assert [v.version for v in history] == sorted(v.version for v in history)
        for version in history:
            assert registry.by_fingerprint(version.fingerprint) == version


def test_a_badly_named_file_is_refused_with_its_name(schema_folder: Path) -> None:
    (schema_folder / "turn_started.v1.avsc").rename(schema_folder / "turn_started.avsc")
    with pytest.raises(SchemaFolderError, match=r"turn_started\.avsc: expected a name like"):
        SchemaRegistry.from_folder(schema_folder)


def test_an_invalid_schema_is_refused_with_its_name(schema_folder: Path) -> None:
    broken = '{"type": "record", "name": "X", "fields": [{}]}'
    (schema_folder / "chunk_ready.v2.avsc").write_text(broken)
    with pytest.raises(SchemaFolderError, match=r"chunk_ready\.v2\.avsc: not a valid Avro schema"):
        SchemaRegistry.from_folder(schema_folder)


def test_a_copied_version_is_refused_as_a_duplicate(schema_folder: Path) -> None:
    shutil.copy(schema_folder / "turn_stopped.v1.avsc", schema_folder / "turn_stopped.v2.avsc")
    with pytest.raises(SchemaFolderError, match="same canonical form"):
        SchemaRegistry.from_folder(schema_folder)


def test_the_same_version_twice_is_refused(schema_folder: Path) -> None:
    schema = json.loads((schema_folder / "turn_stopped.v1.avsc").read_text())
    schema["fields"].append({"name": "extra", "type": ["null", "string"], "default": None})
    (schema_folder / "turn_stopped_copy.v1.avsc").write_text(json.dumps(schema))
    with pytest.raises(SchemaFolderError, match="TurnStopped v1 is defined twice"):
        SchemaRegistry.from_folder(schema_folder)


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaFolderError, match=r"no \.avsc files"):
        SchemaRegistry.from_folder(tmp_path)
