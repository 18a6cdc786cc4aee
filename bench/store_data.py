"""A synthetic store: sessions of many bots over many days, as the projections' row frames.

Rows are made column by column with numpy (a million sessions in seconds) and written with
``Store.insert``, the projector's own write path: generation, dedup tokens, a share of every
table written twice as a replay would. Text is drawn from a small vocabulary plus rare words
(``w<number>``), so a search has both common and rare terms to find.
"""

from __future__ import annotations

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
    ids = session_ids(first, n)
    bots = rng.integers(0, shape.bots, n)
    bot_ids = pl.Series([bot_name(b) for b in range(shape.bots)]).gather(bots)
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
    text = pl.select(
        pl.concat_str(
            pl.lit(pl.Series(SENTENCES).gather(sentence)),
            pl.lit(" w"),
            pl.lit(pl.Series(rare[:, 0])).cast(pl.String),
            pl.lit(" w"),
            pl.lit(pl.Series(rare[:, 1])).cast(pl.String),
        )
    ).to_series()
    language = pl.Series(LANGUAGES).gather(rng.integers(0, len(LANGUAGES), n))
    seq = np.tile(np.arange(t) * 2 + 1, n)
    words = pl.Struct({"text": pl.String, "start": pl.Float64, "end": pl.Float64})
    transcripts = pl.DataFrame(
        {
            "session_id": _repeat(ids, t),
            "turn_id": _tile(pl.Series([f"turn-{i}" for i in range(t)]), n),
            "bot_id": _repeat(bot_ids, t),
            "framework": _repeat(pl.Series(np.where(bots % 2 == 0, "pipecat", "livekit")), t),
            "role": np.tile(roles, n),
            "started_at": pl.Series(starts.ravel()).cast(_US),
            "stopped_at": pl.Series(stops.ravel()).cast(_US),
            "duration_ms": (durations // 1000).ravel(),
            "text": text,
            "interrupted": interrupted.ravel(),
            "timed_out": timed_out.ravel(),
            "user_id": pl.Series([None], dtype=pl.String).new_from_index(0, n * t),
            "language": _repeat(language, t),
            "words": pl.Series([[]], dtype=pl.List(words)).new_from_index(0, n * t),
            "complete": np.ones(n * t, dtype=bool),
            "seq": seq.astype(np.uint64),
            "version": (seq.astype(np.uint64) + np.uint64(1 << 63)),
        }
    )
    chunks = _chunks(ids, bot_ids, start_us, stops[:, -1])
    events = pl.DataFrame(
        {
            "session_id": _repeat(ids, 2 * t),
            "seq": np.tile(np.arange(2 * t), n).astype(np.uint64),
            "event_id": _uuids(rng, n * 2 * t),
            "event_type": np.tile(np.array(["TurnStarted", "TurnStopped"]), n * t),
            "bot_id": _repeat(bot_ids, 2 * t),
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


def session_ids(first: int, count: int) -> pl.Series:
    """The ids of sessions ``first .. first+count``: ``s`` and nine digits."""
    return pl.select(
        pl.concat_str(pl.lit("s"), pl.int_range(first, first + count).cast(pl.String).str.zfill(9))
    ).to_series()


def _repeat(values: pl.Series, times: int) -> pl.Series:
    """Each value ``times`` times in a row (``np.repeat``)."""
    return values.gather(np.repeat(np.arange(len(values)), times))


def _tile(values: pl.Series, times: int) -> pl.Series:
    """The whole series ``times`` times over (``np.tile``)."""
    return values.gather(np.tile(np.arange(len(values)), times))


def _chunks(
    ids: pl.Series, bot_ids: pl.Series, start_us: np.ndarray, end_us: np.ndarray
) -> pl.DataFrame:
    n, c, rate = len(ids), CHUNKS_PER_TRACK, 16_000
    span = np.maximum(end_us - start_us, 1)
    per_chunk = span * rate // 1_000_000 // c
    index = np.tile(np.arange(c), 2 * n)
    samples = np.repeat(per_chunk, 2 * c)
    start_sample = index * samples
    anchor = np.repeat(start_us, 2 * c)
    session_id = _repeat(ids, 2 * c)
    return pl.DataFrame(
        {
            "session_id": session_id,
            "bot_id": _repeat(bot_ids, 2 * c),
            "track": _tile(_repeat(pl.Series(["user", "assistant"]), c), n),
            "chunk_seq": index.astype(np.uint64),
            "chunk_id": _tile(pl.Series([f"c{i}" for i in range(c)]), 2 * n),
            "uri": session_id + ".wav",
            "format": pl.Series(["wav"]).new_from_index(0, 2 * c * n),
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
            "sha256": pl.Series(["0" * 64]).new_from_index(0, 2 * c * n),
            "seq": (index + 100).astype(np.uint64),
        }
    )


def _uuids(rng: np.random.Generator, count: int) -> pl.Series:
    """Random version-4 UUIDs as text, built from the hex of 128 random bits at once."""
    raw = rng.integers(0, 2**63, (count, 2), dtype=np.int64).astype(">u8")
    hexes = pl.Series(np.frombuffer(raw.tobytes().hex().encode(), dtype="S32").astype("U32"))
    h = pl.lit(hexes).str
    return pl.select(
        pl.concat_str(
            h.slice(0, 8),
            pl.lit("-"),
            h.slice(8, 4),
            pl.lit("-4"),
            h.slice(13, 3),
            pl.lit("-a"),
            h.slice(17, 3),
            pl.lit("-"),
            h.slice(20, 12),
        )
    ).to_series()


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
