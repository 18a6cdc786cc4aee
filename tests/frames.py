"""Events through the projector's decode step without a broker: records made by hand."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiokafka import ConsumerRecord, TopicPartition

from consumers.steps import Records
from consumers.steps.decode import Decoded, decode
from schemas import EventCodec, Topics
from schemas.models import Event

CODEC = EventCodec()
TOPICS = Topics()


def record(
    topic: str, offset: int, value: bytes, partition: int = 1
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, partition, offset, 0, 0, b"s-1", value, None, 3, len(value), ())


def decoded(events: Sequence[Event]) -> Decoded:
    """The events as the projector decodes them, each at the next offset of its topic."""
    return decode(
        batch(record(TOPICS.for_event(e), n, CODEC.encode(e)) for n, e in enumerate(events)),
        CODEC,
        TOPICS,
    )


def batch(records: Iterable[ConsumerRecord[bytes, bytes]]) -> Records:
    """Records as the projector gathers them: by partition, in offset order."""
    gathered: Records = {}
    for one in records:
        gathered.setdefault(TopicPartition(one.topic, one.partition), []).append(one)
    return gathered
