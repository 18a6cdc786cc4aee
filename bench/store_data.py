"""A synthetic store: sessions of many bots over many days, as the projections' row frames.

Rows are made column by column with numpy (a million sessions in seconds) and written with
``Store.insert``, the projector's own write path: generation, dedup tokens, a share of every
table written twice as a replay would. Text is drawn from a small vocabulary plus rare words
(``w<number>``), so a search has both common and rare terms to find.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from consumers.storage.clickhouse import Store

TURNS_PER_SESSION = 10
CHUNKS_PER_TRACK = 10
EPOCH = datetime(2026, 11, 1, tzinfo=UTC)
SENTENCES = (
    "hi this is ada from acme support how can i help",
    "my order has not arrived yet",
    "can you give me the order number please",
    "i would like to change my delivery address",
    "sorry to hear that let me check",
    "the parcel left our warehouse on monday",
    "i want a refund for the broken blender",
    "is there anything else i can help you with",
    "thanks that is all goodbye",
    "please hold while i transfer you to billing",
)
RARE_WORDS = 50_000
LANGUAGES = ("en-US", "de-DE", "ja-JP", "fr-FR")
_US = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class Shape:
    sessions: int
    bots: int = 20
    days: int = 30
    duplicate_share: float = 0.05
    batch_sessions: int = 50_000

    @property
    def turns(self) -> int:
        return self.sessions * TURNS_PER_SESSION


def bot_name(index: int) -> str:
    return f"bot-{index:02d}"


def session_frames(shape: Shape, first: int, count: int, seed: int) -> dict[str, pl.DataFrame]:
    """Rows of sessions ``first .. first+count``: every table's frame for one insert each."""
    rng = np.random.default_rng(seed)
    n, t = count, TURNS_PER_SESSION
    ids = np.char.add("s", np.char.zfill((np.arange(first, first + n)).astype(str), 9))
    session_ids = np.repeat(ids, t)
    bots = rng.integers(0, shape.bots, n)
    start_us = rng.integers(0, shape.days * 86_400_000_000, n) + int(EPOCH.timestamp() * 1e6)
    durations = rng.integers(400, 6_000, (n, t)) * 1000
    gaps = rng.integers(100, 1_500, (n, t)) * 1000
    starts = start_us[:, None] + np.cumsum(gaps + durations, axis=1) - durations
    barge = rng.random((n, t)) < 0.08
    stops = starts + durations
    roles = np.tile(np.array(["assistant", "user"]), t // 2)
    interrupted = barge & (roles == "assistant")
    timed_out = (rng.random((n, t)) < 0.03) & (roles == "user")
    sentence = rng.integers(0, len(SENTENCES), n * t)
    rare = rng.integers(0, RARE_WORDS, (n * t, 2))
    text = np.char.add(
        np.char.add(np.array(SENTENCES)[sentence], " w"),
        np.char.add(rare[:, 0].astype(str), np.char.add(" w", rare[:, 1].astype(str))),
    )
    language = np.array(LANGUAGES)[rng.integers(0, len(LANGUAGES), n)]
    seq = np.tile(np.arange(t) * 2 + 1, n)
    transcripts = pl.DataFrame(
        {
            "session_id": session_ids,
            "turn_id": np.tile(np.char.add("turn-", np.arange(t).astype(str)), n),
            "bot_id": np.repeat(np.array([bot_name(b) for b in range(shape.bots)])[bots], t),
            "framework": np.repeat(np.where(bots % 2 == 0, "pipecat", "livekit"), t),
            "role": np.tile(roles, n),
            "started_at": pl.Series(starts.ravel()).cast(_US),
            "stopped_at": pl.Series(stops.ravel()).cast(_US),
            "duration_ms": (durations // 1000).ravel(),
            "text": text,
            "interrupted": interrupted.ravel(),
            "timed_out": timed_out.ravel(),
            "user_id": pl.Series([None] * (n * t), dtype=pl.String),
            "language": np.repeat(language, t),
            "words": pl.Series(
                [[]] * (n * t),
                dtype=pl.List(
                    pl.Struct({"text": pl.String, "start": pl.Float64, "end": pl.Float64})
                ),
            ),
            "complete": np.ones(n * t, dtype=bool),
            "seq": seq.astype(np.uint64),
            "version": (seq.astype(np.uint64) + np.uint64(1 << 63)),
        }
    )
    chunks = _chunks(ids, bots, start_us, stops[:, -1], shape)
    events = pl.DataFrame(
        {
            "session_id": np.repeat(ids, 2 * t),
            "seq": np.tile(np.arange(2 * t), n).astype(np.uint64),
            "event_id": [str(u) for u in _uuids(rng, n * 2 * t)],
            "event_type": np.tile(np.array(["TurnStarted", "TurnStopped"]), n * t),
            "bot_id": np.repeat(np.array([bot_name(b) for b in range(shape.bots)])[bots], 2 * t),
            "occurred_at": pl.Series(np.repeat(starts.ravel(), 2)).cast(_US),
        }
    )
    return {
        name: _sourced(frame, first)
        for name, frame in (
            ("transcripts", transcripts),
            ("audio_chunks", chunks),
            ("session_events", events),
        )
    }


def _chunks(
    ids: np.ndarray, bots: np.ndarray, start_us: np.ndarray, end_us: np.ndarray, shape: Shape
) -> pl.DataFrame:
    n, c, rate = len(ids), CHUNKS_PER_TRACK, 16_000
    span = np.maximum(end_us - start_us, 1)
    per_chunk = span * rate // 1_000_000 // c
    index = np.tile(np.arange(c), 2 * n)
    samples = np.repeat(per_chunk, 2 * c)
    start_sample = index * samples
    anchor = np.repeat(start_us, 2 * c)
    return pl.DataFrame(
        {
            "session_id": np.repeat(ids, 2 * c),
            "bot_id": np.repeat(np.array([bot_name(b) for b in range(shape.bots)])[bots], 2 * c),
            "track": np.tile(np.repeat(np.array(["user", "assistant"]), c), n),
            "chunk_seq": index.astype(np.uint64),
            "chunk_id": np.char.add("c", index.astype(str)),
            "uri": np.char.add(np.repeat(ids, 2 * c), ".wav"),
            "format": np.full(2 * c * n, "wav"),
            "sample_rate": np.full(2 * c * n, rate, dtype=np.uint32),
            "channels": np.ones(2 * c * n, dtype=np.uint8),
            "start_sample": start_sample.astype(np.uint64),
            "end_sample": (start_sample + samples).astype(np.uint64),
            "start_ms": (start_sample * 1000 // rate).astype(np.uint64),
            "end_ms": ((start_sample + samples) * 1000 // rate).astype(np.uint64),
            "recording_started_at": pl.Series(anchor).cast(_US),
            "starts_at": pl.Series(anchor + start_sample * 1_000_000 // rate).cast(_US),
            "ends_at": pl.Series(anchor + (start_sample + samples) * 1_000_000 // rate).cast(_US),
            "byte_size": (samples * 2 + 44).astype(np.uint64),
            "sha256": np.full(2 * c * n, "0" * 64),
            "seq": (index + 100).astype(np.uint64),
        }
    )


def _uuids(rng: np.random.Generator, count: int) -> Iterator[str]:
    raw = rng.integers(0, 2**63, (count, 2), dtype=np.int64).astype(np.uint64)
    for high, low in raw:
        h = f"{int(high):016x}{int(low):016x}"
        yield f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _sourced(frame: pl.DataFrame, first: int) -> pl.DataFrame:
    return frame.with_columns(
        source_topic=pl.lit("bench"),
        source_partition=pl.lit(0, pl.Int32),
        source_offset=pl.int_range(pl.len(), dtype=pl.Int64) + first * 1000,
    )


def load(store: Store, shape: Shape, *, generation: int = 1, seed: int = 7) -> int:
    """Write every session of ``shape``; returns the rows written (duplicates included)."""
    written = 0
    rng = np.random.default_rng(seed)
    for first in range(0, shape.sessions, shape.batch_sessions):
        count = min(shape.batch_sessions, shape.sessions - first)
        for table, frame in session_frames(shape, first, count, seed + first).items():
            store.insert(table, frame, generation=generation, dedup_token=f"{table}|{first}")
            again = frame.filter(pl.Series(rng.random(frame.height) < shape.duplicate_share))
            store.insert(table, again, generation=generation, dedup_token=f"{table}|{first}|dup")
            written += frame.height + again.height
    return written
