from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from schemas.models import EVENT_MODELS
from schemas.registry import SCHEMA_DIR, SchemaFolderError, SchemaRegistry


def test_every_model_has_a_schema_and_latest_is_highest_version() -> None:
    registry = SchemaRegistry.from_folder()
    for model in EVENT_MODELS:
        history = registry.history(model.schema_name)
        assert history, model.schema_name
        assert registry.latest(model.schema_name) == history[-1]
        assert [v.version for v in history] == sorted(v.version for v in history)
        for version in history:
            assert registry.by_fingerprint(version.fingerprint) == version


def _copy_schemas(tmp_path: Path) -> Path:
    folder = tmp_path / "avro"
    shutil.copytree(SCHEMA_DIR, folder)
    return folder


def test_a_badly_named_file_is_refused_with_its_name(tmp_path: Path) -> None:
    folder = _copy_schemas(tmp_path)
    (folder / "turn_started.v1.avsc").rename(folder / "turn_started.avsc")
    with pytest.raises(SchemaFolderError, match=r"turn_started\.avsc: expected a name like"):
        SchemaRegistry.from_folder(folder)


def test_an_invalid_schema_is_refused_with_its_name(tmp_path: Path) -> None:
    folder = _copy_schemas(tmp_path)
    (folder / "chunk_ready.v2.avsc").write_text('{"type": "record", "name": "X", "fields": [{}]}')
    with pytest.raises(SchemaFolderError, match=r"chunk_ready\.v2\.avsc: not a valid Avro schema"):
        SchemaRegistry.from_folder(folder)


def test_a_copied_version_is_refused_as_a_duplicate(tmp_path: Path) -> None:
    folder = _copy_schemas(tmp_path)
    shutil.copy(folder / "turn_stopped.v1.avsc", folder / "turn_stopped.v2.avsc")
    with pytest.raises(SchemaFolderError, match="same canonical form"):
        SchemaRegistry.from_folder(folder)


def test_the_same_version_twice_is_refused(tmp_path: Path) -> None:
    folder = _copy_schemas(tmp_path)
    schema = json.loads((folder / "turn_stopped.v1.avsc").read_text())
    schema["fields"].append({"name": "extra", "type": ["null", "string"], "default": None})
    (folder / "turn_stopped_copy.v1.avsc").write_text(json.dumps(schema))
    with pytest.raises(SchemaFolderError, match="TurnStopped v1 is defined twice"):
        SchemaRegistry.from_folder(folder)


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaFolderError, match=r"no \.avsc files"):
        SchemaRegistry.from_folder(tmp_path)
