"""Decoding a batch: bytes to events, and the records that are not valid events, with why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import ConsumerRecord

from consumers.projections.source import SourcePosition
from schemas import DecodeError, EventCodec, Topics
from schemas.models import Event


@dataclass(frozen=True)
class Rejected:
    """A record that is not a valid event, with why and where it was."""

    record: ConsumerRecord[bytes, bytes]
    reason: str
    detail: str


@dataclass
class Decoded:
    events: list[tuple[Event, SourcePosition]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def decode(
    records: Iterable[ConsumerRecord[bytes, bytes]], codec: EventCodec, topics: Topics
) -> Decoded:
    batch = Decoded()
    for record in records:
        try:
            event = codec.decode(record.value or b"")
        except DecodeError as exc:
            batch.rejected.append(Rejected(record, exc.reason, exc.detail))
            continue
        if topics.for_event(event) != record.topic:
            detail = f"{type(event).__name__} belongs on {topics.for_event(event)}"
            batch.rejected.append(Rejected(record, "wrong-topic", detail))
            continue
        batch.events.append((event, SourcePosition(record.topic, record.partition, record.offset)))
    return batch
