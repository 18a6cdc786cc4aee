"""What the queries answer, as pydantic models: the same types go to Python callers and, as
JSON, out of the HTTP API (times ISO 8601 in UTC, durations in milliseconds)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from queries.paging import as_utc
from schemas import Role, Track

MAX_TURNS = 1_000_000
"""Turn-count filters above this are refused: no call has that many turns."""


def in_utc(at: datetime) -> datetime:
    """A time a caller asks with, in UTC (UTC when it names no zone). One that UTC cannot
    hold (``0001-01-01T00:00:00+05:00``) is refused: it would fail every read that needs it
    in UTC, and the API and the command line refuse it alike."""
    try:
        return as_utc(at)
    except OverflowError:
        raise ValueError(f"{at.isoformat()} falls outside the years 1 to 9999 in UTC") from None


def _named(value: str | None) -> str | None:
    return value or None


AskedName = Annotated[str | None, AfterValidator(_named)]
"""A name to filter by (a bot, a language): empty, it filters nothing, as when it is not
given (a form's empty field); ``language=`` found no session at all while ``bot_id=`` found
every one."""
AskedTime = Annotated[datetime, AfterValidator(in_utc)]
"""A time a caller asks with: ISO 8601, in UTC when it names no zone (a date alone is its
midnight), as the command line takes it (``in_utc``). Refused, ``2026-12-06`` was told it
"should have timezone info", which a date cannot have. One outside the times the store holds
is taken as asked, and answered for (``queries.paging.bounded``)."""


class Answer(BaseModel):
    """What every query answers: frozen, so an answer shared between callers stays as read."""

    model_config = ConfigDict(frozen=True)


class RoleFigures(Answer):
    """One figure per speaker."""

    user: int
    assistant: int


SessionState = Literal["open", "sealed", "sealed_with_holes", "abandoned"]
"""open: no end yet and not silent for long; sealed: ended, and the store holds all it
declared; sealed_with_holes: ended, with something missing; abandoned: no end, and no event for
longer than the store's ``abandoned_after``."""
Hole = Literal[
    "missing_events",
    "open_turns",
    "missing_chunks",
    "extra_chunks",
    "sample_gaps",
    "sample_overlaps",
    "sample_count",
]


class TrackCompleteness(Answer):
    """What the store holds of one audio track, against what the session's end declared."""

    track: Track
    chunks: int = Field(description="Distinct chunks stored.")
    samples: int = Field(description="Their samples, summed.")
    gaps: int = Field(
        description="Chunks starting after the end of the one before them in their recording "
        "segment (the first of a segment: after sample 0)."
    )
    overlaps: int = Field(description="Chunks starting before the end of the one before them.")
    expected_chunks: int | None = Field(description="Declared by the end; null without one.")
    expected_samples: int | None = Field(description="Declared by the end; null without one.")


class Completeness(Answer):
    """Whether the store holds the whole session: every event the producer numbered arrived
    (no hole in ``seq``); once the session has ended (or was abandoned), every turn that
    started has stopped, and once it has ended, every chunk and sample its end declared
    arrived, without gaps or overlaps. A turn under way in an open call is counted
    (``open_turns``), not a hole."""

    complete: bool = Field(description="No holes: `holes` is empty.")
    events: int = Field(description="Distinct events stored.")
    expected: int = Field(
        description="What the producer sent: highest seq + 1, or the event count its end "
        "declared if more."
    )
    missing: int = Field(description="expected - events: events that never arrived.")
    open_turns: int = Field(
        description="Turns started but not (yet) stopped: under way while the call is open."
    )
    state: SessionState = Field("open", description="open, sealed, sealed_with_holes, abandoned.")
    holes: list[Hole] = Field(
        default_factory=list,
        description="What is missing: events; once ended or abandoned, stopped turns; once "
        "ended, chunks (fewer or more than declared), sample gaps, overlaps or a sample total "
        "unlike the declared.",
    )
    ended_at: AwareDatetime | None = Field(None, description="When the session's end occurred.")
    last_seen_at: AwareDatetime | None = Field(
        None, description="When its newest stored event occurred (the bot's clock)."
    )
    tracks: list[TrackCompleteness] = Field(
        default_factory=list, description="Per audio track stored or declared."
    )


class SessionSummary(Answer):
    session_id: str
    bot_id: str
    framework: str
    first_event_at: AwareDatetime = Field(
        description="Start of the session's first turn (a session without turns: its first "
        "event's time)."
    )
    last_event_at: AwareDatetime = Field(
        description="Latest turn start or stop (a session without turns: its newest event's time)."
    )
    turns: RoleFigures
    talk_ms: RoleFigures = Field(description="Summed turn durations per speaker.")
    call_ms: int = Field(description="First turn's start to last turn's stop.")
    overlap_ms: int = Field(description="Time in which both speakers were talking.")
    silence_ms: int = Field(description="Time of the call in which neither was.")
    interruptions: int = Field(description="Assistant turns cut off by the user.")
    timeouts: int = Field(description="User turns closed by a stop timeout.")
    median_response_latency_ms: float | None = Field(
        description="Median over assistant turns of start minus the previous user turn's stop "
        "(barge-ins, which start before that stop, are not latencies): exact, halfway between "
        "the middle two of an even count, where the analytics' p50 (over a bucket's turns) is "
        "the lower one, within 1%."
    )
    languages: list[str]
    completeness: Completeness


class Word(Answer):
    text: str
    start: float = Field(description="Seconds from the turn's start.")
    end: float


class Turn(Answer):
    turn_id: str
    role: Role
    text: str
    started_at: AwareDatetime
    stopped_at: AwareDatetime | None
    duration_ms: int | None
    interrupted: bool
    timed_out: bool
    language: str | None
    user_id: str | None
    words: list[Word]
    response_latency_ms: int | None = Field(
        description="Assistant turns: start minus the previous user turn's stop, when that "
        "stop came first."
    )
    complete: bool = Field(description="False while only the turn's start has been stored.")
    seq: int


class Chunk(Answer):
    chunk_seq: int
    chunk_id: str
    uri: str
    format: str
    sample_rate: int
    channels: int
    start_sample: int
    end_sample: int
    start_ms: int
    end_ms: int
    recording_started_at: AwareDatetime
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    byte_size: int
    sha256: str


class SessionDetail(Answer):
    summary: SessionSummary
    turns: list[Turn] = Field(description="In speaking order.")
    chunks: dict[Track, list[Chunk]] = Field(description="The chunk index, per track.")


class SessionFilters(Answer):
    """Which sessions to list; unset filters do not filter."""

    bot_id: AskedName = None
    since: AskedTime | None = Field(None, description="First event at or after this.")
    until: AskedTime | None = Field(None, description="First event before this.")
    has_interruption: bool | None = None
    has_timeout: bool | None = None
    min_turns: Annotated[int, Field(ge=0, le=MAX_TURNS)] | None = None
    max_turns: Annotated[int, Field(ge=0, le=MAX_TURNS)] | None = None
    language: AskedName = None
    complete: bool | None = Field(
        None,
        description="With (false) or without (true) holes; an abandoned or open call without "
        "holes is complete (`/v1/incomplete` lists abandoned ones too).",
    )
    state: SessionState | None = None


class SessionPage(Answer):
    items: list[SessionSummary] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class Span(Answer):
    """Characters ``start`` to ``end`` (exclusive) of the text."""

    start: int
    end: int


class SearchHit(Answer):
    session_id: str
    turn_id: str
    bot_id: str
    role: Role
    started_at: AwareDatetime
    text: str
    matches: list[Span] = Field(description="Where the searched words and phrases are.")
    marked: str = Field(description="The text with each match inside <mark>...</mark>.")


class SearchPage(Answer):
    items: list[SearchHit] = Field(description="Newest first.")
    next_cursor: str | None


class IncompleteSession(Answer):
    session_id: str
    bot_id: str
    completeness: Completeness
    missing_seqs: list[int] = Field(description="The first 100 seqs that never arrived.")
    open_turn_ids: list[str] = Field(description="Turns started but never stopped (first 100).")


class IncompletePage(Answer):
    items: list[IncompleteSession]
    next_cursor: str | None


class Percentiles(Answer):
    """Each percentile is the value at its rank, within 1% of it (a DDSketch of the values),
    in 0.1 ms."""

    count: int = Field(description="How many values the percentiles are taken over.")
    p50: float
    p90: float
    p95: float
    p99: float


class RoleTurnFigures(Answer):
    turns: int
    complete: int
    interrupted: int
    timed_out: int
    duration_ms: Percentiles | None = Field(description="Over complete turns.")


class TurnFigures(Answer):
    since: AwareDatetime
    until: AwareDatetime
    bot_id: str | None
    roles: dict[Role, RoleTurnFigures]


class LatencyFigures(Answer):
    since: AwareDatetime
    until: AwareDatetime
    bot_id: str | None
    response_latency_ms: Percentiles | None = Field(
        description="Assistant turns: start minus the previous user turn's stop, when that "
        "stop came first (barge-ins are not latencies)."
    )


class MetricDefinition(Answer):
    """What a metric means (``analytics.definitions``): its version goes up when that changes."""

    name: str
    version: int
    unit: str
    kind: Literal["count", "sum", "distribution", "ratio", "rate"]
    per: Literal["turn", "session"] = Field(
        description="What it is counted over: a turn lands in the bucket of its start, a "
        "session in that of its first turn in the range."
    )
    definition: str


class RolePercentiles(Answer):
    user: Percentiles | None
    assistant: Percentiles | None


class SessionTimeFigures(Answer):
    total: int = Field(description="Summed over the sessions.")
    per_session: Percentiles | None


class StateCounts(Answer):
    sealed: int
    sealed_with_holes: int
    abandoned: int
    open: int


class MetricsRow(Answer):
    """One bucket of one group; each field is the metric of that name in ``definitions``.
    Metrics counted over sessions are null when the figures are split by role."""

    bucket_start: AwareDatetime
    group: str | None = Field(description="The group's value; null when not grouped.")
    sessions: int | None = None
    turns: RoleFigures
    response_latency_ms: Percentiles | None
    turn_duration_ms: RolePercentiles
    talk_ms: RoleFigures
    talk_ratio: float | None
    interruptions: int
    interruptions_per_100_assistant_turns: float | None
    interruptions_per_call_minute: float | None = None
    user_stop_timeouts: int
    call_ms: int | None = None
    overlap_ms: SessionTimeFigures | None = None
    silence_ms: SessionTimeFigures | None = None
    completeness: StateCounts | None = None


class Metrics(Answer):
    since: AwareDatetime
    until: AwareDatetime
    bucket: Literal["minute", "hour", "day"]
    bot_id: str | None
    group_by: Literal["bot", "role", "language", "framework"] | None
    definitions: list[MetricDefinition]
    rows: list[MetricsRow] = Field(
        description="By bucket, then group; buckets with no turn and no session are left out."
    )
