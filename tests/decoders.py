"""The two decoders side by side, for the differential tests and the atheris harness.

``one_by_one`` is fastavro and the model, a message at a time; ``columnar`` is the projector's
decode step over a whole batch. ``disagreements`` names every message on which they differ,
in verdict or in value; it must always be empty.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache
from typing import Any

from aiokafka import ConsumerRecord
from fastavro import parse_schema, schemaless_writer

from consumers.projections.source import SOURCE_TYPES
from consumers.steps.decode import decode
from schemas import DecodeError
from schemas.models import Event
from schemas.single_object import HEADER_SIZE
from tests.frames import CODEC, TOPICS, batch, record

EDGE_BYTES = (0x00, 0x01, 0x02, 0x03, 0x7E, 0x7F, 0x80, 0x81, 0xFE, 0xFF)
OVERLONG_VARINTS = (
    b"\x80\x00",
    b"\xff" * 9 + b"\x01",
    b"\xfe" + b"\xff" * 8 + b"\x7f",
    b"\x80" * 10 + b"\x00",
    b"\xff" * 11 + b"\x01",
)
"""A zero spelt long, the largest long, the largest long with its cut-off bits set, and two
varints of more than 64 bits."""


@cache
def _prefix_schema(name: str, fields: int) -> Any:
    writer = CODEC.registry.latest(name)
    return parse_schema({**writer.raw, "fields": writer.raw["fields"][:fields]})


def field_starts(event: Event) -> list[int]:
    """Where each field of the event's encoding begins: the bytes a mutation hits hardest."""
    record = event.model_dump()
    starts = []
    for fields in range(len(CODEC.registry.latest(event.schema_name).raw["fields"])):
        out = io.BytesIO()
        schemaless_writer(out, _prefix_schema(event.schema_name, fields), record)
        starts.append(HEADER_SIZE + len(out.getvalue()))
    return starts


def one_by_one(message: bytes) -> Event | None:
    try:
        return CODEC.decode(message)
    except DecodeError:
        return None


def _topic(message: bytes) -> str:
    """The topic a producer would have sent it to: its header's, so that no verdict is the
    topic's (the one-by-one reader knows no topics)."""
    try:
        writer, _ = CODEC.writer_of(message)
        return TOPICS.for_kind(CODEC.model_of(writer))
    except DecodeError:
        return TOPICS.turn_events


def columnar(messages: Sequence[bytes]) -> list[Event | None]:
    records: list[ConsumerRecord[bytes, bytes]] = [
        record(_topic(m), offset, m) for offset, m in enumerate(messages)
    ]
    decoded = decode(batch(records), CODEC, TOPICS)
    found: list[Event | None] = [None] * len(messages)
    for kind, frame in decoded.frames.items():
        for row in frame.iter_rows(named=True):
            offset = row["source_offset"]
            fields: dict[str, Any] = {k: v for k, v in row.items() if k not in SOURCE_TYPES}
            found[offset] = kind.model_validate(fields)
    return found


def disagreements(messages: Sequence[bytes]) -> list[str]:
    apart = [one_by_one(m) for m in messages]
    together = columnar(messages)
    return [
        f"message {i} ({messages[i].hex()}): one by one {a!r}, in columns {b!r}"
        for i, (a, b) in enumerate(zip(apart, together, strict=True))
        if a != b
    ]
