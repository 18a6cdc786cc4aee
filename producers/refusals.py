"""Events Kafka will never take, told from a broker that is only down.

A batch stays at the head of the queue until Kafka acknowledges it, which is what keeps a
session's events in order through an outage. An event Kafka refuses for good (larger than a
request may be, or a record error Kafka marks not retriable) would hold that head for ever:
every later event waits behind it, and the next process finds it first in the spool. Such an
event is dropped (counted and logged once with what identifies it) and delivery goes on.

The size is checked before sending, against the limit the client is built with: aiokafka
refuses such a record at ``send``, and a broker whose own limit is lower refuses it in its
answer; both are handled too, as refusals of that one record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from aiokafka.errors import (
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from producers.frames import SpoolRecord
from schemas import EventCodec

log = structlog.get_logger(__name__)

REFUSED_FOR_GOOD: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    InvalidTimestampError,
)
"""Errors about one record that Kafka says are not retriable: sent again, it is refused again.
(Errors about the client or the topic, an authorisation refused say, are not among them: they
would refuse every event, and the events wait for them to be put right.)"""


def record_bytes(record: SpoolRecord) -> int:
    """What a record weighs against the client's limit: its value and its key."""
    return len(record.value) + len(record.key)


def fitting(records: Sequence[SpoolRecord], limit: int) -> int:
    """How many of the first records are within ``limit``: the batch to send stops before the
    first that is not, which is dropped once it has come to the head."""
    for count, record in enumerate(records):
        if record_bytes(record) > limit:
            return count
    return len(records)


@dataclass(frozen=True)
class Outcome:
    """What became of a batch sent to Kafka, in queue order."""

    acknowledged: int
    """The batch's first records, acknowledged."""
    refused: BaseException | None = None
    """Set when the record after them was refused for good: it is to be dropped."""
    failure: BaseException | None = None
    """Any other failure among the rest: they wait for another attempt (after a pause)."""


def outcome(results: Sequence[BaseException | None]) -> Outcome:
    """The outcome of a batch from each sent record's result (None: acknowledged), in order.

    Records after the ones given were not sent. Records after a refused one that were
    acknowledged are sent again (delivery is at-least-once), and so are records refused later
    in the batch: they reach the head, and are dropped there, one at a time, which keeps the
    queue's head the only place events leave it.
    """
    acknowledged = 0
    while acknowledged < len(results) and results[acknowledged] is None:
        acknowledged += 1
    rest = list(results[acknowledged:])
    refused = None
    if rest and isinstance(rest[0], REFUSED_FOR_GOOD):
        refused = rest.pop(0)
    failure = next((r for r in rest if r is not None and not isinstance(r, REFUSED_FOR_GOOD)), None)
    return Outcome(acknowledged, refused, failure)


def log_refused(record: SpoolRecord, limit: int, reason: str) -> None:
    """Say, once per event, which event was dropped and why: its session, seq and type come
    from decoding it (a record this version cannot decode is named by its key alone)."""
    try:
        event = EventCodec().decode(record.value)
        seq: int | None = event.seq
        event_type: str | None = type(event).__name__
    except Exception:  # an unreadable record is dropped all the same
        seq, event_type = None, None
    log.error(
        "event_refused",
        session_id=record.key.decode(errors="replace"),
        seq=seq,
        event_type=event_type,
        topic=record.topic,
        bytes=record_bytes(record),
        limit=limit,
        reason=reason,
    )
