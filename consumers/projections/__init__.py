"""Pure projection logic: frames of decoded events in, frames of rows out. No Kafka, no
ClickHouse.

``project`` routes each kind of event to every projection it feeds. A projection is a module
with its row type (what readers get back, and the order of its columns) and the functions that
turn a frame of events into a frame of rows, column by column.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from consumers.projections import audio_chunks, session_events, transcripts
from schemas import ChunkReady, TurnStarted, TurnStopped
from schemas.models import Event

PROJECTIONS = ("transcripts", "audio_chunks", "session_events")
"""Every projection, by the name readers query it under."""

Frames = Mapping[type[Event], pl.DataFrame]
"""Decoded events: one frame per kind, with the model's fields and the source columns."""


def project(events: Frames) -> dict[str, pl.DataFrame]:
    """Every projection's rows for a batch of events, as frames in the projections' columns."""
    started, stopped = events[TurnStarted], events[TurnStopped]
    return {
        "transcripts": transcripts.from_turns(started, stopped),
        "audio_chunks": audio_chunks.from_ready(events[ChunkReady]),
        "session_events": pl.concat(
            [session_events.from_any(frame, kind) for kind, frame in events.items()]
        ),
    }
