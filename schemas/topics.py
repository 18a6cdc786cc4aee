"""Which topic each event travels on.

Turn events share one topic so that a session's starts and stops stay in one partition, in the
order the producer emitted them; audio chunks are larger and read by other consumers, so they get
their own. Both are keyed by session_id.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.models import ChunkReady, Event


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    @property
    def turn_events(self) -> str:
        return f"{self.prefix}turn-events"

    @property
    def audio_chunks(self) -> str:
        return f"{self.prefix}audio-chunks"

    @property
    def dead_letters(self) -> str:
        """Records the projector could not use, with why and where they came from."""
        return f"{self.prefix}dead-letters"

    @property
    def events(self) -> tuple[str, str]:
        return (self.turn_events, self.audio_chunks)

    @property
    def all(self) -> tuple[str, str, str]:
        return (*self.events, self.dead_letters)

    def for_event(self, event: Event) -> str:
        return self.for_kind(type(event))

    def for_kind(self, kind: type[Event]) -> str:
        return self.audio_chunks if kind is ChunkReady else self.turn_events
