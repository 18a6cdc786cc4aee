"""Stored events live forever: every schema version must stay readable by every other.

Each published version is written with random data and read back with every version of the
same record (older readers of newer data and newer readers of older data). A change that would
strand stored events fails here, before it can be released.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.utils import generate_many
from pydantic import BaseModel

from schemas.compatibility import problems, unpublished
from schemas.models import EVENT_MODELS, Envelope
from schemas.registry import SchemaRegistry, SchemaVersion

REGISTRY = SchemaRegistry.from_folder()

PAIRS = [
    (writer, reader)
    for name in REGISTRY.names()
    for writer in REGISTRY.history(name)
    for reader in REGISTRY.history(name)
]


def test_the_folder_strands_no_stored_event() -> None:
    assert problems() == []
    assert unpublished() == [], "pin new versions in schemas/avro/published.json"


def test_editing_a_published_version_is_reported(schema_folder: Path) -> None:
    path = schema_folder / "turn_started.v1.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "extra", "type": ["null", "string"], "default": None})
    path.write_text(json.dumps(schema))
    (found,) = problems(schema_folder)
    assert found.startswith("turn_started.v1.avsc changed after TurnStarted v1 was published")


def test_a_new_field_without_default_is_reported(schema_folder: Path) -> None:
    schema = json.loads((schema_folder / "chunk_ready.v1.avsc").read_text())
    schema["fields"].append({"name": "codec", "type": "string"})
    (schema_folder / "chunk_ready.v2.avsc").write_text(json.dumps(schema))
    (found,) = problems(schema_folder)
    assert found.startswith("ChunkReady v2 cannot read events written with ChunkReady v1")
    assert "codec" in found
    assert unpublished(schema_folder) == ["ChunkReady v2"]


@pytest.mark.parametrize(
    ("writer", "reader"), PAIRS, ids=[f"{w.label}->{r.label}" for w, r in PAIRS]
)
def test_each_version_reads_data_written_with_each_other(
    writer: SchemaVersion, reader: SchemaVersion
) -> None:
    shared = _field_names(writer.parsed) & _field_names(reader.parsed)
    for record in generate_many(writer.parsed, 50):
        buffer = io.BytesIO()
        schemaless_writer(buffer, writer.parsed, record)
        as_written = _read(buffer.getvalue(), writer, writer)
        as_read = _read(buffer.getvalue(), writer, reader)
        assert {k: as_read[k] for k in shared} == {k: as_written[k] for k in shared}


def _read(body: bytes, writer: SchemaVersion, reader: SchemaVersion) -> dict[str, Any]:
    record = schemaless_reader(io.BytesIO(body), writer.parsed, reader.parsed)
    assert isinstance(record, dict)
    return record


def _field_names(schema: dict[str, Any]) -> set[str]:
    return {f["name"] for f in schema["fields"]}


def _schema_shape(schema: Any) -> Any:
    """Field names of a record schema, recursing through unions, arrays and nested records."""
    if isinstance(schema, list):
        nested = [_schema_shape(s) for s in schema if s != "null"]
        return nested[0] if len(nested) == 1 else nested
    if isinstance(schema, dict):
        if schema["type"] == "record":
            return {f["name"]: _schema_shape(f["type"]) for f in schema["fields"]}
        if schema["type"] == "array":
            return _schema_shape(schema["items"])
    return None


def _model_shape(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", ())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {name: _model_shape(f.annotation) for name, f in annotation.model_fields.items()}
    nested = [_model_shape(a) for a in args if a is not type(None) and a is not Ellipsis]
    models = [n for n in nested if n is not None]
    return models[0] if models else None


@pytest.mark.parametrize("model", EVENT_MODELS, ids=lambda m: m.__name__)
def test_models_mirror_the_latest_schema(model: type[Envelope]) -> None:
    assert _model_shape(model) == _schema_shape(REGISTRY.latest(model.schema_name).parsed)
