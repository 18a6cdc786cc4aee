"""The schema versions kept in ``schemas/avro``, indexed by name and by fingerprint.

Every version ever published stays in the folder as ``<event>.v<N>.avsc``, self-contained (no
reference to a shared file), so that editing one file can never change the fingerprint of a
version that events were already written with. The highest version of each record is the one
producers write and readers resolve to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, fingerprint, to_parsing_canonical_form

from schemas.wire import Wire

SCHEMA_DIR = Path(__file__).parent / "avro"
_FILE_NAME = re.compile(r"^(?P<event>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")


class SchemaFolderError(ValueError):
    """The schema folder is inconsistent; the message names the file."""


@dataclass(frozen=True)
class SchemaVersion:
    name: str
    """Full Avro record name, e.g. transcript_store.events.TurnStopped."""
    version: int
    path: Path
    raw: dict[str, Any]
    """The schema as written in its file."""
    parsed: dict[str, Any]
    fingerprint: bytes
    """8-byte little-endian CRC-64-AVRO of the parsing canonical form."""

    @cached_property
    def wire(self) -> Wire:
        """The version as both decoders read it (see ``schemas.wire``)."""
        return Wire(self.raw)

    @property
    def label(self) -> str:
        return f"{self.name.rsplit('.', 1)[-1]} v{self.version}"


def crc64_avro_fingerprint(schema: Any) -> bytes:
    # fastavro's hex digest is already the little-endian byte order single-object encoding uses.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def load_version(path: Path) -> SchemaVersion:
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise SchemaFolderError(f"{path.name}: expected a name like turn_stopped.v2.avsc")
    try:
        raw = json.loads(path.read_text())
        parsed = parse_schema(raw)
    except (ValueError, KeyError, TypeError, SchemaParseException) as exc:
        raise SchemaFolderError(f"{path.name}: not a valid Avro schema: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise SchemaFolderError(f"{path.name}: an event schema must be a record")
    return SchemaVersion(
        name=parsed["name"],
        version=int(match["version"]),
        path=path,
        raw=raw,
        parsed=parsed,
        fingerprint=crc64_avro_fingerprint(raw),
    )


class SchemaRegistry:
    def __init__(self, versions: Iterable[SchemaVersion]) -> None:
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        self._by_name: dict[str, list[SchemaVersion]] = {}
        for version in sorted(versions, key=lambda v: (v.name, v.version)):
            clash = self._by_fingerprint.get(version.fingerprint)
            if clash is not None:
                raise SchemaFolderError(
                    f"{version.path.name} has the same canonical form as {clash.path.name}"
                )
            self._by_fingerprint[version.fingerprint] = version
            history = self._by_name.setdefault(version.name, [])
            if history and history[-1].version == version.version:
                raise SchemaFolderError(f"{version.label} is defined twice: {version.path.name}")
            history.append(version)

    @classmethod
    def from_folder(cls, folder: Path = SCHEMA_DIR) -> SchemaRegistry:
        registry = cls(load_version(path) for path in sorted(folder.glob("*.avsc")))
        if not registry._by_name:
            raise SchemaFolderError(f"{folder}: no .avsc files")
        return registry

    def by_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        return self._by_fingerprint.get(fp)

    def latest(self, name: str) -> SchemaVersion:
        try:
            return self._by_name[name][-1]
        except KeyError:
            raise KeyError(f"no schema named {name} in the registry") from None

    def history(self, name: str) -> tuple[SchemaVersion, ...]:
        return tuple(self._by_name.get(name, ()))

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)
