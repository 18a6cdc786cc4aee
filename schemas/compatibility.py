"""Whether the schema folder can still read every event ever written.

Two ways to strand stored events: change a version that was already published (its
fingerprint changes, so its events no longer find their schema), or add a version that cannot
read an older one, or that older readers cannot read (producers and consumers are not upgraded
together). ``published.json`` pins the fingerprint of every published version; Apache Avro's
own reader/writer compatibility checker judges every pair of versions of a record.
"""

from __future__ import annotations

import json
from pathlib import Path

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from schemas.registry import SCHEMA_DIR, SchemaRegistry, SchemaVersion

PUBLISHED_FILE = "published.json"


def published(folder: Path = SCHEMA_DIR) -> dict[str, str]:
    """Label ("TurnStopped v1") to fingerprint (hex) of every version events may exist for."""
    path = folder / PUBLISHED_FILE
    return dict(json.loads(path.read_text())) if path.exists() else {}


def problems(folder: Path = SCHEMA_DIR) -> list[str]:
    """Everything that would strand stored events, each a sentence naming the files; empty
    when the folder is safe to release."""
    registry = SchemaRegistry.from_folder(folder)
    found: list[str] = []
    versions = {v.label: v for name in registry.names() for v in registry.history(name)}
    for label, fingerprint in sorted(published(folder).items()):
        version = versions.get(label)
        if version is None:
            found.append(
                f"{label} was published but its file is gone: events written with it "
                f"(fingerprint {fingerprint}) could no longer be decoded; restore it"
            )
        elif version.fingerprint.hex() != fingerprint:
            found.append(
                f"{version.path.name} changed after {label} was published (fingerprint "
                f"{fingerprint} -> {version.fingerprint.hex()}): events written with it could no "
                f"longer be decoded; restore the file and add the change as a new version"
            )
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    for name in registry.names():
        history = registry.history(name)
        parsed = {v.version: _apache(v) for v in history}
        for writer in history:
            for reader in history:
                result = checker.get_compatibility(parsed[reader.version], parsed[writer.version])
                if result.compatibility is not SchemaCompatibilityType.compatible:
                    why = "; ".join(sorted(result.messages)) or "incompatible"
                    found.append(
                        f"{reader.label} cannot read events written with {writer.label}: {why} "
                        f"({', '.join(sorted(result.locations))})"
                    )
    return found


def unpublished(folder: Path = SCHEMA_DIR) -> list[str]:
    """Versions in the folder not yet pinned in ``published.json``."""
    registry = SchemaRegistry.from_folder(folder)
    pinned = published(folder)
    return [
        v.label
        for name in registry.names()
        for v in registry.history(name)
        if v.label not in pinned
    ]


def _apache(version: SchemaVersion) -> avro.schema.Schema:
    return avro.schema.parse(version.path.read_text())
