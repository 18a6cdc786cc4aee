"""Decoding many messages of one writer version at once, into columns.

Decoding event by event (fastavro, then pydantic) costs about 15 us an event, which caps a
projector far below the broker's pace. Here the single-object encoded messages of one writer
version are laid end to end in one block of an in-memory Avro object container file, which
polars reads in native code straight into columns, several times faster. Each message's
10-byte frame header is read as a leading fixed field, so messages need no copying to strip it.

A message that is not exactly one record would make its neighbours decode as garbage, so every
message is followed by a 16-byte boundary: a random nonce and the message's index, declared to
the reader as a trailing fixed field. A record read from the wrong place cannot end on its own
boundary, so a shifted read is caught, never stored. When the block fails, each message is read
alone (fastavro) to name the bad ones, and the rest are halved until each message the columnar
reader refuses is alone: one bad record never takes its neighbours with it.

Both decoders hold every message to the same rules (``schemas.wire``): booleans, enums and ints
are read as the integers on the wire and checked, and a message must be the canonical encoding
of its row, so a record means one thing whichever decoder reads it.

The columns are then resolved to the latest version of the record (Avro schema resolution:
fields added since the writer's version take their default), so the caller sees one shape per
record whichever versions its events were written with.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from fastavro import schemaless_writer
from fastavro import writer as container_writer

from schemas.canonical import Canonical
from schemas.registry import SchemaRegistry, SchemaVersion
from schemas.single_object import HEADER_SIZE

FRAME = "__frame"
BOUNDARY = "__boundary"
_BOUNDARY_SIZE = 16
_LONG = {"type": "long"}

ReadOne = Callable[[SchemaVersion, bytes], object]
"""Reads one message alone, raising if it is not exactly one record of the writer version."""


def _long(value: int) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, _LONG, value)
    return out.getvalue()


def _fixed(field: str, size: int) -> dict[str, Any]:
    return {"name": field, "type": {"type": "fixed", "name": field.strip("_"), "size": size}}


def _framed_and_bounded(schema: dict[str, Any]) -> dict[str, Any]:
    """The writer schema with the frame header before its fields and the boundary after."""
    fields = [_fixed(FRAME, HEADER_SIZE), *schema["fields"], _fixed(BOUNDARY, _BOUNDARY_SIZE)]
    return {**schema, "fields": fields}


@dataclass
class Columns:
    """Messages read into one frame; ``rejected`` maps the index of each message that is not a
    record of its writer version to why. The frame holds the others, in their order."""

    frame: pl.DataFrame
    rejected: dict[int, str] = field(default_factory=dict)


class _Container:
    """One writer version's object-container header and how to read a block under it."""

    def __init__(self, writer: SchemaVersion) -> None:
        self.wire = writer.wire
        self._canonical = Canonical(self.wire.schema, HEADER_SIZE)
        self._rules = [
            pl.when(broken.fill_null(False)).then(pl.lit(says))
            for broken, says in self.wire.broken()
        ]
        self.sync = os.urandom(16)
        header = io.BytesIO()
        container_writer(header, _framed_and_bounded(self.wire.schema), [], sync_marker=self.sync)
        self.header = header.getvalue()
        self._nonce = os.urandom(8)
        """Unknown outside this process, so no message can carry a boundary of its own."""
        self._boundaries: tuple[list[bytes], pl.Series] = ([], pl.Series(dtype=pl.Binary))
        """The boundaries made so far, as values and as a column; replaced whole, never
        changed, since several threads may read batches at once."""

    def _boundaries_for(self, count: int) -> tuple[list[bytes], pl.Series]:
        values, column = self._boundaries
        if count > len(values):
            wanted = max(count, 2 * len(values))
            values = [self._nonce + i.to_bytes(8, "little") for i in range(wanted)]
            column = pl.Series(values, dtype=pl.Binary)
            self._boundaries = (values, column)
        return values, column.head(count)

    def read(self, messages: Sequence[bytes]) -> pl.DataFrame:
        """The messages as rows of the wire schema (coded fields still integers)."""
        boundaries, expected = self._boundaries_for(len(messages))
        size = sum(map(len, messages)) + _BOUNDARY_SIZE * len(messages)
        records: list[bytes] = [b""] * (2 * len(messages))
        records[0::2] = messages
        records[1::2] = boundaries[: len(messages)]
        data = b"".join((self.header, _long(len(messages)), _long(size), *records, self.sync))
        try:
            frame = pl.read_avro(io.BytesIO(data))
        except BaseException as exc:  # polars panics (a BaseException) on corrupt input
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise ValueError(
                f"the columnar reader refused it: {type(exc).__name__}: {exc}"
            ) from None
        if not frame.get_column(BOUNDARY).equals(expected):
            raise ValueError("a message is not exactly one record")
        return frame.drop(FRAME, BOUNDARY)

    def broken(self, frame: pl.DataFrame, messages: Sequence[bytes]) -> pl.Series:
        """Per row, why the message has no single meaning (``schemas.wire``), or null."""
        canonical = self._canonical.breaks(frame, messages)
        return (
            frame.with_columns(canonical)
            .select(pl.coalesce(*self._rules, pl.col("broken")).alias("broken"))
            .to_series()
        )


class BulkReader:
    """Reads messages of any known writer version into frames shaped like the latest version."""

    def __init__(self, registry: SchemaRegistry, read_one: ReadOne) -> None:
        self.registry = registry
        self._read_one = read_one
        self._containers: dict[bytes, _Container] = {}
        self._shapes: dict[str, pl.Schema] = {}

    def read(self, writer: SchemaVersion, messages: Sequence[bytes]) -> Columns:
        """Messages that all begin with ``writer``'s frame header, into one frame."""
        container = self._container(writer)
        rejected: dict[int, str] = {}
        try:
            frame = container.read(messages)
        except ValueError:
            rejected = self._unreadable(writer, container, messages)
            frame = self._rest(writer, container, messages, rejected)
        kept = [i for i in range(len(messages)) if i not in rejected]
        broken = container.broken(frame, [messages[i] for i in kept])
        if broken.null_count() != frame.height:
            rejected |= {
                kept[row]: f"{writer.label}: {says}"
                for row, says in enumerate(broken)
                if says is not None
            }
            frame = frame.filter(broken.is_null())
        return Columns(
            self._resolved(writer, container.wire.meaning(frame)), dict(sorted(rejected.items()))
        )

    def _rest(
        self,
        writer: SchemaVersion,
        container: _Container,
        messages: Sequence[bytes],
        rejected: dict[int, str],
    ) -> pl.DataFrame:
        """The messages not ``rejected``, together: each reads alone, so together they do,
        unless the columnar reader has a flaw no single message shows; then they go too."""
        try:
            return container.read([m for i, m in enumerate(messages) if i not in rejected])
        except ValueError as exc:
            detail = f"{writer.label}: the columnar reader refused the rest of the batch: {exc}"
            rejected.update({i: detail for i in range(len(messages)) if i not in rejected})
            return container.read([])

    def _unreadable(
        self, writer: SchemaVersion, container: _Container, messages: Sequence[bytes]
    ) -> dict[int, str]:
        """The messages that are not records of ``writer`` one by one, then those the columnar
        reader refuses, found by halving the rest until each refused one is alone: only the bad
        records leave the batch, never their neighbours."""
        rejected: dict[int, str] = {}
        for i, message in enumerate(messages):
            try:
                self._read_one(writer, message)
            except ValueError as exc:
                rejected[i] = getattr(exc, "detail", str(exc))
        rest = [i for i in range(len(messages)) if i not in rejected]
        return rejected | self._refused(writer, container, messages, rest)

    def _refused(
        self,
        writer: SchemaVersion,
        container: _Container,
        messages: Sequence[bytes],
        indices: list[int],
    ) -> dict[int, str]:
        try:
            container.read([messages[i] for i in indices])
        except ValueError as exc:
            if len(indices) == 1:
                return {indices[0]: f"{writer.label}: {exc}"}
            half = len(indices) // 2
            return self._refused(writer, container, messages, indices[:half]) | self._refused(
                writer, container, messages, indices[half:]
            )
        return {}

    def _container(self, writer: SchemaVersion) -> _Container:
        container = self._containers.get(writer.fingerprint)
        if container is None:
            container = self._containers[writer.fingerprint] = _Container(writer)
        return container

    def shape(self, name: str) -> pl.Schema:
        """The columns (and their types) every frame of record ``name`` has."""
        shape = self._shapes.get(name)
        if shape is None:
            latest = self._container(self.registry.latest(name))
            shape = self._shapes[name] = latest.wire.meaning(latest.read([])).schema
        return shape

    def _resolved(self, writer: SchemaVersion, frame: pl.DataFrame) -> pl.DataFrame:
        shape = self.shape(writer.name)
        if frame.schema == shape:
            return frame
        defaults = _defaults(self.registry.latest(writer.name))
        return frame.select(
            pl.col(name).cast(dtype)
            if name in frame.columns
            else pl.lit(defaults[name], dtype=dtype).alias(name)
            for name, dtype in shape.items()
        )


def _defaults(version: SchemaVersion) -> dict[str, Any]:
    """The default of every field of a version, as a scalar a column can be filled with."""
    defaults: dict[str, Any] = {}
    for spec in version.raw["fields"]:
        value = spec.get("default")
        if isinstance(value, dict | list):
            raise NotImplementedError(
                f"{version.label}: the columnar reader fills only scalar defaults, "
                f"not that of {spec['name']}"
            )
        defaults[spec["name"]] = value
    return defaults
