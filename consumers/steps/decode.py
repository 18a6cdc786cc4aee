"""Decoding a batch: bytes to frames of events, and the records that are not valid events,
with why.

Records are grouped by topic and frame header (marker and writer fingerprint), so both are
looked at once per schema version, not once per record; each version's messages are read
together into columns (``schemas.bulk``), and the models' rules are checked on whole columns
(``schemas.checks``). A record is refused for its framing, its schema, its topic, its Avro or
a broken rule, and never takes the valid records of its batch down with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import polars as pl
from aiokafka import ConsumerRecord

from consumers.projections import Frames
from consumers.projections.source import SOURCE_TYPES
from consumers.steps import Records
from schemas import DecodeError, EventCodec, Topics
from schemas.checks import Check, checks, first_broken
from schemas.models import EVENT_MODELS, Event
from schemas.registry import SchemaVersion
from schemas.single_object import HEADER_SIZE

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


def decode(records: Records, codec: EventCodec, topics: Topics) -> Decoded:
    by_header: dict[tuple[str, bytes], list[Record]] = {}
    for tp, batch in records.items():
        for record in batch:
            key = (tp.topic, (record.value or b"")[:HEADER_SIZE])
            same = by_header.get(key)
            if same is None:
                same = by_header[key] = []
            same.append(record)
    rejected: list[Rejected] = []
    parts: dict[type[Event], list[pl.DataFrame]] = {model: [] for model in EVENT_MODELS}
    for (topic, header), same in by_header.items():
        try:
            writer, _ = codec.writer_of(header)
            kind = codec.model_of(writer)
        except DecodeError as exc:
            rejected += (Rejected(record, exc.reason, exc.detail) for record in same)
            continue
        if topics.for_kind(kind) != topic:
            detail = f"{kind.__name__} belongs on {topics.for_kind(kind)}"
            rejected += (Rejected(record, "wrong-topic", detail) for record in same)
            continue
        parts[kind].append(_read(writer, kind, same, codec, rejected))
    frames = {
        kind: pl.concat(found) if found else _empty(codec, kind) for kind, found in parts.items()
    }
    rejected.sort(key=lambda r: (r.record.topic, r.record.partition, r.record.offset))
    return Decoded(frames, rejected)


def _read(
    writer: SchemaVersion,
    kind: type[Event],
    records: list[Record],
    codec: EventCodec,
    rejected: list[Rejected],
) -> pl.DataFrame:
    """One writer version's records as a frame of valid events; the others join ``rejected``."""
    columns = codec.bulk.read(writer, [record.value or b"" for record in records])
    kept = records
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
    broken = first_broken(frame, _RULES[kind])
    if broken.null_count() == frame.height:
        return frame
    rejected += (
        Rejected(record, "invalid", f"{writer.label}: {says}")
        for record, says in zip(kept, broken, strict=True)
        if says is not None
    )
    return frame.filter(broken.is_null())


def _empty(codec: EventCodec, kind: type[Event]) -> pl.DataFrame:
    return pl.DataFrame(schema={**codec.bulk.shape(kind.schema_name), **SOURCE_TYPES})
