"""Decoding a batch: bytes to frames of events, and the records that are not valid events,
with why.

Records are sorted by the schema version they were written with, each version's bodies are
read together into columns (``schemas.bulk``), and the models' rules are checked on whole
columns (``schemas.checks``). A record is refused for its framing, its schema, its topic, its
Avro or a broken rule, and never takes the valid records of its batch down with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeAlias

import polars as pl
from aiokafka import ConsumerRecord

from consumers.projections import Frames
from consumers.projections.source import SOURCE_TYPES
from schemas import DecodeError, EventCodec, Topics
from schemas.checks import Check, checks, first_broken
from schemas.models import EVENT_MODELS, Event
from schemas.registry import SchemaVersion

Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass(frozen=True)
class Rejected:
    """A record that is not a valid event, with why and where it was."""

    record: Record
    reason: str
    detail: str


@dataclass
class Decoded:
    frames: Frames
    """Every kind of event, each in one frame (empty when the batch had none)."""
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(frame.height for frame in self.frames.values())


_RULES: dict[type[Event], list[Check]] = {model: checks(model) for model in EVENT_MODELS}


@dataclass
class _Written:
    """The records of one writer version, in batch order."""

    writer: SchemaVersion
    kind: type[Event]
    records: list[Record] = field(default_factory=list)
    bodies: list[memoryview] = field(default_factory=list)


def decode(records: Iterable[Record], codec: EventCodec, topics: Topics) -> Decoded:
    rejected: list[Rejected] = []
    by_writer: dict[bytes, _Written] = {}
    for record in records:
        try:
            writer, body = codec.writer_of(record.value or b"")
        except DecodeError as exc:
            rejected.append(Rejected(record, exc.reason, exc.detail))
            continue
        written = by_writer.get(writer.fingerprint)
        if written is None:
            written = by_writer[writer.fingerprint] = _Written(writer, codec.model_of(writer))
        if topics.for_kind(written.kind) != record.topic:
            detail = f"{written.kind.__name__} belongs on {topics.for_kind(written.kind)}"
            rejected.append(Rejected(record, "wrong-topic", detail))
            continue
        written.records.append(record)
        written.bodies.append(body)
    parts: dict[type[Event], list[pl.DataFrame]] = {model: [] for model in EVENT_MODELS}
    for written in by_writer.values():
        parts[written.kind].append(_read(written, codec, rejected))
    frames = {
        kind: pl.concat(found) if found else _empty(codec, kind) for kind, found in parts.items()
    }
    return Decoded(frames, rejected)


def _read(written: _Written, codec: EventCodec, rejected: list[Rejected]) -> pl.DataFrame:
    """One writer version's records as a frame of valid events; the others join ``rejected``."""
    columns = codec.bulk.read(written.writer, written.bodies)
    kept = written.records
    if columns.rejected:
        rejected += (Rejected(kept[i], "bad-avro", d) for i, d in columns.rejected.items())
        kept = [r for i, r in enumerate(kept) if i not in columns.rejected]
    frame = columns.frame.with_columns(
        pl.Series("source_topic", [r.topic for r in kept], SOURCE_TYPES["source_topic"]),
        pl.Series(
            "source_partition", [r.partition for r in kept], SOURCE_TYPES["source_partition"]
        ),
        pl.Series("source_offset", [r.offset for r in kept], SOURCE_TYPES["source_offset"]),
    )
    broken = first_broken(frame, _RULES[written.kind])
    if broken.null_count() == frame.height:
        return frame
    label = written.writer.label
    rejected += (
        Rejected(record, "invalid", f"{label}: {says}")
        for record, says in zip(kept, broken, strict=True)
        if says is not None
    )
    return frame.filter(broken.is_null())


def _empty(codec: EventCodec, kind: type[Event]) -> pl.DataFrame:
    return pl.DataFrame(schema={**codec.bulk.shape(kind.schema_name), **SOURCE_TYPES})
