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
from itertools import compress
from operator import attrgetter, itemgetter
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


_VALUE = attrgetter("value")
_PARTITION = attrgetter("partition")
_OFFSET = attrgetter("offset")
_HEADER = itemgetter(slice(0, HEADER_SIZE))


def decode(records: Records, codec: EventCodec, topics: Topics) -> Decoded:
    rejected: list[Rejected] = []
    parts: dict[type[Event], list[pl.DataFrame]] = {model: [] for model in EVENT_MODELS}
    for (topic, header), same in _by_header(records).items():
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
        parts[kind].append(_read(writer, kind, topic, same, codec, rejected))
    frames = {
        kind: pl.concat(found) if found else _empty(codec, kind) for kind, found in parts.items()
    }
    rejected.sort(key=lambda r: (r.record.topic, r.record.partition, r.record.offset))
    return Decoded(frames, rejected)


def _by_header(records: Records) -> dict[tuple[str, bytes], list[Record]]:
    """Records by topic and frame header, each group in offset order. A partition holds a few
    kinds of event from a few producer versions, so it is split by one pass per header."""
    groups: dict[tuple[str, bytes], list[Record]] = {}
    for tp, batch in records.items():
        headers = _headers(batch)
        for header in dict.fromkeys(headers):
            same = compress(batch, map(header.__eq__, headers))
            groups.setdefault((tp.topic, header), []).extend(same)
    return groups


def _headers(batch: list[Record]) -> list[bytes]:
    values = list(map(_VALUE, batch))
    try:
        return list(map(_HEADER, values))
    except TypeError:  # a record without a value (a tombstone): an empty header, refused
        return [(value or b"")[:HEADER_SIZE] for value in values]


def _read(
    writer: SchemaVersion,
    kind: type[Event],
    topic: str,
    records: list[Record],
    codec: EventCodec,
    rejected: list[Rejected],
) -> pl.DataFrame:
    """One writer version's records, all from ``topic``, as a frame of valid events; the
    others join ``rejected``."""
    columns = codec.bulk.read(writer, list(map(_VALUE, records)))
    kept = records
    if columns.rejected:
        rejected += (Rejected(kept[i], "bad-avro", d) for i, d in columns.rejected.items())
        kept = [r for i, r in enumerate(kept) if i not in columns.rejected]
    frame = columns.frame.with_columns(
        pl.lit(topic, SOURCE_TYPES["source_topic"]).alias("source_topic"),
        pl.Series(
            "source_partition", list(map(_PARTITION, kept)), SOURCE_TYPES["source_partition"]
        ),
        pl.Series("source_offset", list(map(_OFFSET, kept)), SOURCE_TYPES["source_offset"]),
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
