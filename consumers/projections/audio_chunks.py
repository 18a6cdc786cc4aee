"""The audio-chunk index: one row per chunk, with its place on the recording's timeline.

Positions are given three ways, because readers ask in all three: samples (to cut the file),
milliseconds from the recording start (to seek a player) and wall clock (to line the chunk up
with turns, whose times are wall clock).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from consumers.projections.source import SourcePosition
from schemas import ChunkReady, Track


class ChunkRow(NamedTuple):
    session_id: str
    bot_id: str
    track: Track
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
    recording_started_at: datetime
    starts_at: datetime
    ends_at: datetime
    byte_size: int
    sha256: str
    seq: int
    source: SourcePosition


def chunk_row(event: ChunkReady, source: SourcePosition) -> ChunkRow:
    end_sample = event.start_sample + event.num_samples
    start_ms = event.start_sample * 1000 // event.sample_rate
    end_ms = end_sample * 1000 // event.sample_rate
    anchor = event.recording_started_at
    return ChunkRow(
        session_id=event.session_id,
        bot_id=event.bot_id,
        track=event.track,
        chunk_seq=event.chunk_seq,
        chunk_id=event.chunk_id,
        uri=event.uri,
        format=event.format,
        sample_rate=event.sample_rate,
        channels=event.channels,
        start_sample=event.start_sample,
        end_sample=end_sample,
        start_ms=start_ms,
        end_ms=end_ms,
        recording_started_at=anchor,
        starts_at=anchor
        + timedelta(microseconds=event.start_sample * 1_000_000 // event.sample_rate),
        ends_at=anchor + timedelta(microseconds=end_sample * 1_000_000 // event.sample_rate),
        byte_size=event.byte_size,
        sha256=event.sha256,
        seq=event.seq,
        source=source,
    )
