"""The contract between bots and projections: versioned Avro schemas and their pydantic mirrors.

Nothing here knows about Kafka or ClickHouse; both sides import it.
"""

from schemas.codec import DecodeError, EventCodec
from schemas.models import (
    ChunkReady,
    Envelope,
    Event,
    ProducerInfo,
    Role,
    SessionEnded,
    Track,
    TurnStarted,
    TurnStopped,
    WordTiming,
)
from schemas.topics import Topics

__all__ = [
    "ChunkReady",
    "DecodeError",
    "Envelope",
    "Event",
    "EventCodec",
    "ProducerInfo",
    "Role",
    "SessionEnded",
    "Topics",
    "Track",
    "TurnStarted",
    "TurnStopped",
    "WordTiming",
]
