"""Pydantic mirrors of the current Avro schemas.

Validation happens on construction so that a bot finds out about a bad value at the call site,
with the field named, before anything reaches Kafka. The limits here are the contract's limits:
the projector re-validates decoded events with the same models, so a record that slipped past a
foreign producer is refused on the way in too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, ClassVar, Literal, Self
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    field_serializer,
    model_validator,
)

Role = Literal["user", "assistant"]
Track = Literal["user", "assistant", "mixed"]

MAX_ID_CHARS = 256
MAX_LANGUAGE_CHARS = 35
"""The longest BCP-47 tag a registry allows (RFC 5646 asks for 35)."""
MAX_TEXT_CHARS = 200_000
"""A ten-minute monologue is about 10k characters; anything near this bound is not speech."""


def to_utc(value: datetime) -> datetime:
    # Decoded events are already UTC; converting anyway costs more than the rest of validation.
    return value if value.tzinfo is UTC else value.astimezone(UTC)


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Wall clocks outside these are refused: the store's time columns end at 2299 and a chunk's
end lies up to ``MAX_SAMPLES`` later than its recording's start (70 years at 1 kHz)."""
MAX_SAMPLES = 2**40
"""A sample position or count: 265 days at 48 kHz. Bounded, with the sample rate, so that the
milliseconds and wall clocks derived from it fit their columns."""

Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
UtcDatetime = Annotated[
    AwareDatetime, Strict(), Field(ge=EARLIEST, lt=LATEST), AfterValidator(to_utc)
]
"""Naive datetimes are refused: a wall clock without a zone cannot be lined up with audio. So
is anything but a datetime: a number was taken for Unix time, so a bot that passed
``time.monotonic()`` had its turns dated 1970, and a string's zone and format were guessed."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    in_order: ClassVar[tuple[tuple[str, str], ...]] = ()
    """Pairs (earlier, later) of fields where the later may not be less than the earlier.

    Declared rather than written as a validator, so that ``schemas.checks`` enforces the same
    rule on whole columns of decoded events.
    """

    @model_validator(mode="after")
    def _fields_in_order(self) -> Self:
        for earlier, later in self.in_order:
            first, second = getattr(self, earlier), getattr(self, later)
            if second < first:
                raise ValueError(
                    f"{later} ({_shown(second)}) is before {earlier} ({_shown(first)})"
                )
        return self


def _shown(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


class ProducerInfo(_Frozen):
    framework: Annotated[str, Field(min_length=1, max_length=64)]
    framework_version: Annotated[str, Field(max_length=64)] = ""
    library_version: Annotated[str, Field(max_length=64)] = ""


class Envelope(_Frozen):
    """Fields every event carries, in every schema version."""

    schema_name: ClassVar[str]
    """Full Avro name of the record this model mirrors."""

    event_id: UUID = Field(default_factory=uuid4)
    session_id: Identifier
    bot_id: Identifier
    seq: Annotated[int, Strict(), Field(ge=0, lt=2**63)]
    occurred_at: UtcDatetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: ProducerInfo


class TurnStarted(Envelope):
    schema_name: ClassVar[str] = "transcript_store.events.TurnStarted"

    turn_id: Identifier
    role: Role
    started_at: UtcDatetime
    detection_strategy: Annotated[str, Field(max_length=MAX_ID_CHARS)] | None = None


class WordTiming(_Frozen):
    text: Annotated[str, Field(max_length=MAX_ID_CHARS)]
    start: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    end: Annotated[float, Field(ge=0, allow_inf_nan=False)]

    in_order: ClassVar[tuple[tuple[str, str], ...]] = (("start", "end"),)


class TurnStopped(Envelope):
    schema_name: ClassVar[str] = "transcript_store.events.TurnStopped"
    in_order: ClassVar[tuple[tuple[str, str], ...]] = (("started_at", "stopped_at"),)

    turn_id: Identifier
    role: Role
    started_at: UtcDatetime
    stopped_at: UtcDatetime
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
    interrupted: bool = False
    timed_out: bool = False
    user_id: Annotated[str, Field(max_length=MAX_ID_CHARS)] | None = None
    language: Annotated[str, Field(min_length=1, max_length=MAX_LANGUAGE_CHARS)] | None = None
    """BCP-47 tag from the speech-to-text, e.g. en-US (schema v2; None in v1 events)."""
    words: tuple[WordTiming, ...] | None = None

    @field_serializer("words")
    def _words_as_list(self, words: tuple[WordTiming, ...] | None) -> list[WordTiming] | None:
        """fastavro would read a tuple in a union as an explicit (branch, value) pair."""
        return None if words is None else list(words)

    @property
    def duration_ms(self) -> int:
        return (self.stopped_at - self.started_at) // timedelta(milliseconds=1)


class ChunkReady(Envelope):
    schema_name: ClassVar[str] = "transcript_store.events.ChunkReady"

    chunk_id: Identifier
    track: Track
    chunk_seq: Annotated[int, Strict(), Field(ge=0, lt=2**63)]
    uri: Annotated[str, Field(min_length=1, max_length=4096)]
    format: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.+-]{0,31}$")]
    sample_rate: Annotated[int, Strict(), Field(ge=1_000, le=768_000)]
    channels: Annotated[int, Strict(), Field(ge=1, le=32)]
    start_sample: Annotated[int, Strict(), Field(ge=0, le=MAX_SAMPLES)]
    num_samples: Annotated[int, Strict(), Field(ge=0, le=MAX_SAMPLES)]
    recording_started_at: UtcDatetime
    byte_size: Annotated[int, Strict(), Field(ge=0, lt=2**63)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


Count = Annotated[int, Strict(), Field(ge=0, lt=2**63)]


class SessionEnded(Envelope):
    """The session's last event: what the producer sent of it, so that the store can tell a
    session it holds whole (sealed) from one with holes. Per track of ``ChunkReady``, its
    chunks and their samples, as flat fields (no track has chunks: zeros)."""

    schema_name: ClassVar[str] = "transcript_store.events.SessionEnded"

    event_count: Annotated[int, Strict(), Field(ge=1, lt=2**63)]
    """Events of the session, this one included: seqs 0 .. event_count - 1."""
    user_chunks: Count = 0
    user_samples: Count = 0
    assistant_chunks: Count = 0
    assistant_samples: Count = 0
    mixed_chunks: Count = 0
    mixed_samples: Count = 0


Event = TurnStarted | TurnStopped | ChunkReady | SessionEnded
EVENT_MODELS: tuple[type[Event], ...] = (TurnStarted, TurnStopped, ChunkReady, SessionEnded)
