"""The clips of ``bench.query``: a 5 s clip of one track cut from 30 s chunks over HTTP, from a
local folder and from an S3 API server, and the bytes the service read to cut it.

``SESSIONS`` sessions per store, each a user track of ``CHUNKS`` chunks of 30 s (16 kHz mono
16-bit WAV, as the producers write them), are written through ``open_chunk_store`` into a folder
of the run's scratch copy, and into a bucket of a ``DevS3`` (s3proxy) the run starts and reaches
through ``AWS_*`` variables set in its own process only. Their chunk rows, computed by the
projector's ``from_ready``, go into the scratch store with ``Store.insert`` before it settles;
sessions without turns are fine, as a session's time starts at its first chunk.

Clips start at random whole milliseconds (a fixed seed) of a session's 90 s, so about one in
eight crosses a chunk boundary and reads two chunks. The service runs in the benchmark's
process, so its own ``state.clips.reader`` counts the bytes: the first clip of a chunk also
fetches the 512 bytes that hold its header, in the same request (later clips of the chunk do
not). With ``requests`` clips over 150 chunks most clips are their chunk's first, and
``bytes_ratio`` includes those headers: 512 bytes on a clip's 160,000, 0.3%, per chunk first
read.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl

from audio.stores import ChunkReader, ChunkStore, open_chunk_store
from audio.wav import SAMPLE_WIDTH, wav_bytes
from bench.query_load import Clients, ServerThread
from bench.store_data import EPOCH, bot_name
from consumers.projections.audio_chunks import from_ready
from consumers.storage.clickhouse import Store
from queries.clips import wav_layout
from tstore.devs3 import DevS3

SESSIONS = 50
"""Per store; each clip draws one."""
WARMUP_SESSIONS = 2
"""Per store, after the timed ones: the checked warm-up clips read their chunks, so the timed
clips find no header cached that they did not read themselves."""
WARMUP_CLIPS = 5
"""Per warm-up session."""
CHUNKS = 3
CHUNK_S = 30
RATE = 16_000
CLIP_MS = 5_000
CLIP_BYTES = CLIP_MS * RATE // 1000 * SAMPLE_WIDTH
"""The clip's samples: what reading it would cost with no overhead at all."""
SESSION_MS = CHUNKS * CHUNK_S * 1000
CHUNK_BYTES = CHUNK_S * RATE * SAMPLE_WIDTH
WHERE = ("local", "s3")
_READY = pl.Schema(
    {
        "session_id": pl.String(),
        "bot_id": pl.String(),
        "track": pl.String(),
        "chunk_seq": pl.Int64(),
        "chunk_id": pl.String(),
        "uri": pl.String(),
        "format": pl.String(),
        "sample_rate": pl.Int32(),
        "channels": pl.Int32(),
        "start_sample": pl.Int64(),
        "num_samples": pl.Int64(),
        "recording_started_at": pl.Datetime("us", "UTC"),
        "byte_size": pl.Int64(),
        "sha256": pl.String(),
        "seq": pl.Int64(),
        "source_topic": pl.String(),
        "source_partition": pl.Int32(),
        "source_offset": pl.Int64(),
    }
)
"""A decoded ``ChunkReady`` frame's columns, as the projector hands them to ``from_ready``."""


def session_id(where: str, number: int) -> str:
    return f"clips-{where}-{number:03d}"


def session_pcm(number: int) -> bytes:
    """The session's whole user track: noise, so that a clip cut from the wrong place shows."""
    rng = np.random.default_rng(number)
    return rng.integers(-(2**15), 2**15, SESSION_MS * RATE // 1000, dtype="<i2").tobytes()


def write_sessions(chunks: ChunkStore, where: str) -> pl.DataFrame:
    """Every session's chunks into ``chunks``; their rows, as the projector makes them."""
    rows: list[dict[str, object]] = []
    for number in range(SESSIONS + WARMUP_SESSIONS):
        sid, pcm = session_id(where, number), session_pcm(number)
        for seq in range(CHUNKS):
            piece = pcm[seq * CHUNK_BYTES : (seq + 1) * CHUNK_BYTES]
            stored = chunks.put(f"{sid}/user-{seq:04d}.wav", wav_bytes(piece, RATE, 1))
            rows.append(
                {
                    "session_id": sid,
                    "bot_id": bot_name(0),
                    "track": "user",
                    "chunk_seq": seq,
                    "chunk_id": f"{sid}/user/{seq}",
                    "uri": stored.uri,
                    "format": "wav",
                    "sample_rate": RATE,
                    "channels": 1,
                    "start_sample": seq * CHUNK_S * RATE,
                    "num_samples": CHUNK_S * RATE,
                    "recording_started_at": EPOCH + timedelta(minutes=number),
                    "byte_size": stored.byte_size,
                    "sha256": stored.sha256,
                    "seq": seq,
                    "source_topic": "bench-clips",
                    "source_partition": 0,
                    "source_offset": len(rows),
                }
            )
    return from_ready(pl.DataFrame(rows, schema=_READY))


def clip_path(where: str, number: int, from_ms: int) -> str:
    return (
        f"/v1/sessions/{session_id(where, number)}/audio"
        f"?from_ms={from_ms}&to_ms={from_ms + CLIP_MS}&track=user"
    )


@dataclass(frozen=True)
class ClipRuns:
    latencies: dict[str, list[float]]
    """Per store (``WHERE``), each timed clip's latency (ms)."""
    bytes_ratio: float
    """Bytes the service read for the timed clips over their samples' bytes."""


class ClipSessions:
    """The clip sessions of one run, in a folder and in a bucket; the bucket is served until
    the ``with`` block ends (a run that fails before has s3proxy stopped at exit)."""

    def __init__(self, store: Store, scratch: Path) -> None:
        self._s3 = DevS3(scratch / "s3")
        self._s3.start()
        try:
            _reach(self._s3)
            bucket = self._s3.create_bucket("clips")
            urls = {"local": (scratch / "chunks").as_uri(), "s3": f"s3://{bucket}/calls"}
            generation = store.generations.current()["audio_chunks"]
            for where in WHERE:
                rows = write_sessions(open_chunk_store(urls[where]), where)
                store.insert("audio_chunks", rows, generation=generation)
        except BaseException:
            self._s3.close()
            raise

    def __enter__(self) -> ClipSessions:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._s3.close()

    def timed(
        self, server: ServerThread, clients: Clients, requests: int, budget_s: float, seed: int
    ) -> ClipRuns:
        """``requests`` clips of each store, shared out among ``clients``, after the warm-up."""
        reader = server.state.clips.reader
        if not isinstance(reader, ChunkReader):
            raise TypeError(f"the service reads chunks with {reader!r}, which counts no bytes")
        warm_up(server.url)
        rng = random.Random(seed)
        before = reader.bytes_read
        latencies: dict[str, list[float]] = {}
        for where in WHERE:
            paths = [
                clip_path(where, rng.randrange(SESSIONS), rng.randrange(SESSION_MS - CLIP_MS + 1))
                for _ in range(requests)
            ]
            latencies[where] = clients.get(paths, budget_s)
        clips = sum(len(timed) for timed in latencies.values())
        return ClipRuns(latencies, round((reader.bytes_read - before) / (clips * CLIP_BYTES), 4))


def _reach(server: DevS3) -> None:
    """Only ``server``'s variables: a profile or token of the machine's would be used too."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(server.client_env())


def warm_up(base_url: str) -> None:
    """Clips of the warm-up sessions, one across a chunk boundary, each checked to be exactly
    its samples: the figures are of clips that are right."""
    rng = random.Random(0)
    with httpx.Client(base_url=base_url, timeout=60) as http:
        for where in WHERE:
            for number in range(SESSIONS, SESSIONS + WARMUP_SESSIONS):
                pcm = session_pcm(number)
                starts = [CHUNK_S * 1000 - CLIP_MS // 2]
                starts += [rng.randrange(SESSION_MS - CLIP_MS + 1) for _ in range(WARMUP_CLIPS - 1)]
                for from_ms in starts:
                    answer = http.get(clip_path(where, number, from_ms))
                    first = from_ms * RATE // 1000 * SAMPLE_WIDTH
                    holes = json.loads(answer.headers.get("X-Audio-Holes", "null"))
                    layout = wav_layout(answer.content)
                    if (
                        answer.status_code != 200
                        or layout is None
                        or answer.content[layout.data_offset :] != pcm[first : first + CLIP_BYTES]
                        or holes != {"user": []}
                    ):
                        raise RuntimeError(
                            f"clip {clip_path(where, number, from_ms)}: {answer.status_code}, "
                            f"{len(answer.content)} bytes, holes {holes}: not its samples"
                        )
