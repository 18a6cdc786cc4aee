"""Pure projection logic: events in, rows out. No Kafka, no ClickHouse.

``project`` routes an event to every projection it feeds; each projection is a module with its
row type and the function that builds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from consumers.projections.audio_chunks import ChunkRow, chunk_row
from consumers.projections.session_events import SessionEventRow, session_event_row
from consumers.projections.source import SourcePosition
from consumers.projections.transcripts import TranscriptRow, transcript_row
from schemas import ChunkReady, TurnStarted, TurnStopped
from schemas.models import Event

PROJECTIONS = ("transcripts", "audio_chunks", "session_events")
"""Every projection, by the name readers query it under."""


@dataclass
class ProjectedRows:
    transcripts: list[TranscriptRow] = field(default_factory=list)
    audio_chunks: list[ChunkRow] = field(default_factory=list)
    session_events: list[SessionEventRow] = field(default_factory=list)

    def add(self, event: Event, source: SourcePosition) -> None:
        self.session_events.append(session_event_row(event, source))
        if isinstance(event, TurnStarted | TurnStopped):
            self.transcripts.append(transcript_row(event, source))
        elif isinstance(event, ChunkReady):
            self.audio_chunks.append(chunk_row(event, source))

    def by_table(self) -> dict[str, list[TranscriptRow] | list[ChunkRow] | list[SessionEventRow]]:
        return {
            "transcripts": self.transcripts,
            "audio_chunks": self.audio_chunks,
            "session_events": self.session_events,
        }


def project(events: Iterable[tuple[Event, SourcePosition]]) -> ProjectedRows:
    rows = ProjectedRows()
    for event, source in events:
        rows.add(event, source)
    return rows
