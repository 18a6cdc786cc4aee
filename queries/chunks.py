"""A session's audio-chunk index: where each chunk of each track sits on the recording."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from queries.models import Chunk
from queries.paging import as_utc
from queries.reader import Reader
from schemas import Track

FIELDS = (
    "chunk_id",
    "uri",
    "format",
    "sample_rate",
    "channels",
    "start_sample",
    "end_sample",
    "start_ms",
    "end_ms",
    "recording_started_at",
    "starts_at",
    "ends_at",
    "byte_size",
    "sha256",
)
_TIMES = ("recording_started_at", "starts_at", "ends_at")


def chunk_index(reader: Reader, session_id: str) -> dict[Track, list[Chunk]]:
    """Per track, its chunks in order, each once whatever was inserted twice."""
    rows = reader.rows(
        f"""
SELECT toString(track), chunk_seq, argMax(({", ".join(FIELDS)}), seq)
FROM audio_chunks_generations
WHERE generation = {{generation:UInt32}} AND session_id = {{sid:String}}
GROUP BY track, chunk_seq
ORDER BY track, chunk_seq""",
        generation=reader.generation("audio_chunks"),
        sid=session_id,
    )
    index: dict[Track, list[Chunk]] = defaultdict(list)
    for track, chunk_seq, latest in rows:
        index[track].append(as_chunk(chunk_seq=chunk_seq, **dict(zip(FIELDS, latest, strict=True))))
    return dict(index)


def as_chunk(**row: Any) -> Chunk:
    """A chunk's entry from its row's ``chunk_seq`` and ``FIELDS`` (more are ignored)."""
    fields = {name: row[name] for name in ("chunk_seq", *FIELDS)}
    return Chunk(**fields | {name: as_utc(fields[name]) for name in _TIMES})
