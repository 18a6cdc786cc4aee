"""One meaning for every byte string: the rules both decoders hold a message to.

Avro gives a meaning to a boolean byte of 0 or 1, an enum index below its symbol count, an int
within 32 bits and a union index that names a branch, and every value has one shortest
encoding, the one every writer produces. Outside that the two decoders guess, differently:
fastavro reads an enum index of -1 as the last symbol and a boolean byte 2 as true, polars reads
that byte as false, takes any union index but 0 as the value and gives up on a varint of more
than 64 bits where fastavro wraps on. A record whose meaning depends on who reads it is refused
by both.

So booleans, enums and ints are read as the plain integers on the wire (``Wire.schema``) and
their ranges are checked here (``Coded``), and a message must be the canonical encoding of what
was read from it. One by one that is checked by encoding the record again and comparing
(``Wire.refusal``); in columns by its length and by the few bytes no length vouches for
(``schemas.canonical``).

A UUID must be a string in the canonical 8-4-4-4-12 form (``CANONICAL_UUID``): fastavro reads
it with ``uuid.UUID``, which takes a leading space, a sign or underscores among the digits (it
parses with ``int``), where the columns see a string that is no UUID.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl
from fastavro import parse_schema, schemaless_reader, schemaless_writer

NOT_CANONICAL = (
    "not the canonical encoding of its record "
    "(an overlong number, a union index naming no branch, or an array in several blocks)"
)
_INT32 = (-(2**31), 2**31 - 1)
_TRUE = -1
"""The boolean byte 1, read as a zigzag varint."""
CANONICAL_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@dataclass(frozen=True)
class Coded:
    """A field read as the integer on the wire, with the integers Avro gives a meaning."""

    name: str
    low: int
    high: int
    says: str
    column: Callable[[pl.Expr], pl.Expr]

    def broken(self) -> pl.Expr:
        value = pl.col(self.name)
        return (value < self.low) | (value > self.high)


def _coded(name: str, spec: object) -> Coded | None:
    kind = spec.get("type") if isinstance(spec, dict) else spec
    if kind == "boolean":
        return Coded(name, _TRUE, 0, f"{name}: a boolean byte other than 0 or 1", _is_true)
    if kind == "int":
        return Coded(name, *_INT32, f"{name}: outside the 32 bits of an Avro int", _as_int32)
    if kind == "enum" and isinstance(spec, dict):
        symbols: list[str] = spec["symbols"]
        says = f"{name}: an enum index outside 0..{len(symbols) - 1}"
        return Coded(name, 0, len(symbols) - 1, says, _symbols(symbols))
    return None


def _is_true(value: pl.Expr) -> pl.Expr:
    return value == _TRUE


def _as_int32(value: pl.Expr) -> pl.Expr:
    return value.cast(pl.Int32)


def _symbols(symbols: list[str]) -> Callable[[pl.Expr], pl.Expr]:
    def column(value: pl.Expr) -> pl.Expr:
        return value.replace_strict(range(len(symbols)), symbols, return_dtype=pl.String)

    return column


def _inner_types(spec: object) -> Iterator[object]:
    """Every type nested inside ``spec`` (not ``spec`` itself)."""
    children: list[object] = []
    if isinstance(spec, list):
        children = spec
    elif isinstance(spec, dict):
        kind = spec.get("type")
        if kind == "record":
            children = [f["type"] for f in spec["fields"]]
        elif kind == "array":
            children = [spec["items"]]
        elif kind == "map":
            children = [spec["values"]]
    for child in children:
        yield child
        yield from _inner_types(child)


def _plain(spec: object) -> object:
    """The type without logical types: what the bytes are, before any reading of them."""
    if isinstance(spec, list):
        return [_plain(branch) for branch in spec]
    if not isinstance(spec, dict):
        return spec
    plain = {k: v for k, v in spec.items() if k != "logicalType"}
    if plain.get("type") == "record":
        plain["fields"] = [{**f, "type": _plain(f["type"])} for f in spec["fields"]]
    elif plain.get("type") == "array":
        plain["items"] = _plain(spec["items"])
    elif plain.get("type") == "map":
        plain["values"] = _plain(spec["values"])
    return plain if len(plain) > 1 else plain["type"]


class Wire:
    """A writer version as both decoders read it: booleans, enums and ints as longs."""

    def __init__(self, writer: dict[str, Any]) -> None:
        self.coded: list[Coded] = []
        fields = []
        for spec in writer["fields"]:
            name, kind = spec["name"], spec["type"]
            for inner in _inner_types(kind):
                if _coded(name, inner) is not None:
                    raise TypeError(f"{name}: a boolean, enum or int inside {kind} is not read")
            coded = _coded(name, kind)
            if coded is None:
                fields.append(spec)
            else:
                self.coded.append(coded)
                fields.append({"name": name, "type": "long"})
        self.uuids = [
            spec["name"]
            for spec in writer["fields"]
            if isinstance(spec["type"], dict) and spec["type"].get("logicalType") == "uuid"
        ]
        self.schema: dict[str, Any] = {**writer, "fields": fields}
        """The writer schema with its coded fields as longs: same bytes, no guessing."""
        self._plain = parse_schema(_plain(self.schema))  # type: ignore[arg-type]

    def refusal(self, body: bytes | memoryview) -> str | None:
        """Why ``body`` has no single meaning, or None. Raises what fastavro raises on bytes
        that are not a record at all."""
        stream = io.BytesIO(body)
        record = schemaless_reader(stream, self._plain, None)
        if not isinstance(record, dict):
            return "body is not a record"
        trailing = len(body) - stream.tell()
        if trailing:
            return f"{trailing} bytes after the record"
        for coded in self.coded:
            if not coded.low <= record[coded.name] <= coded.high:
                return coded.says
        for name in self.uuids:
            if not re.match(CANONICAL_UUID, record[name]):
                return f"{name} is not a UUID"
        again = io.BytesIO()
        schemaless_writer(again, self._plain, record)
        return None if again.getvalue() == bytes(body) else NOT_CANONICAL

    def broken(self) -> list[tuple[pl.Expr, str]]:
        """Per coded field, the rows whose integer has no meaning, and why."""
        return [(coded.broken(), coded.says) for coded in self.coded]

    def meaning(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The coded columns as the values they stand for (rows already checked)."""
        return frame.with_columns(c.column(pl.col(c.name)).alias(c.name) for c in self.coded)
