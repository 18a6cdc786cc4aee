"""Recorded calls for the audio tests: turn events and chunks cut as a test asks, and what
a clip sounds like."""

from __future__ import annotations

import io
import random
import wave
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from audio.stores import ChunkWriter
from audio.wav import wav_bytes
from producers.simulator import SAMPLE_RATE, SimulatedTurn, track_audio
from schemas import ChunkReady, Role, TurnStarted, TurnStopped, WordTiming
from schemas.models import Event
from tests.events import envelope

FRAME_S = 0.02

CHUNK_S: dict[Role, float] = {"user": 1.0, "assistant": 30.0}
"""The two tracks cut at different boundaries, one of them in long chunks."""


def turn_id_of(turn: SimulatedTurn) -> str:
    """The id ``recorded_call`` gives the turn, as the simulator does."""
    return f"{turn.role}-{turn.index}"


def recorded_call(
    session_id: str,
    started_at: datetime,
    script: list[SimulatedTurn],
    store: ChunkWriter,
    *,
    reconnect_s: float | None = None,
    chunk_s: dict[Role, float] = CHUNK_S,
    skip: frozenset[tuple[Role, int]] = frozenset(),
) -> list[Event]:
    """The call's turn events, then its chunks: each track cut in ``chunk_s`` of its own, a
    second recording segment from ``reconnect_s`` on, the chunks in ``skip`` left out."""
    events: list[Event] = []
    seq = iter(range(1_000_000))
    for turn in script:
        at = {"turn_id": turn_id_of(turn), "role": turn.role}
        start = started_at + timedelta(seconds=turn.start_s)
        stop = started_at + timedelta(seconds=turn.end_s)
        events.append(TurnStarted(**envelope(next(seq), session_id), **at, started_at=start))
        events.append(
            TurnStopped(
                **envelope(next(seq), session_id),
                **at,
                started_at=start,
                stopped_at=stop,
                text=turn.text,
                words=(WordTiming(text=turn.text.split()[0], start=0.1, end=0.3),),
                interrupted=turn.interrupted,
                timed_out=turn.timed_out,
            )
        )
    end_s = script[-1].end_s + 0.5
    for role in ("user", "assistant"):
        for number, (segment_s, lo, hi) in enumerate(_cuts(chunk_s[role], reconnect_s, end_s)):
            if (role, number) in skip:
                continue
            pcm = track_audio(script, role, lo, hi)
            key = f"{session_id}/{role}-{number:04d}.wav"
            stored = store.put(key, wav_bytes(pcm, SAMPLE_RATE, 1))
            events.append(
                ChunkReady(
                    **envelope(next(seq), session_id),
                    chunk_id=f"{session_id}/{role}/{number}",
                    track=role,
                    chunk_seq=number,
                    uri=stored.uri,
                    format="wav",
                    sample_rate=SAMPLE_RATE,
                    channels=1,
                    start_sample=round((lo - segment_s) * SAMPLE_RATE),
                    num_samples=len(pcm) // 2,
                    recording_started_at=started_at + timedelta(seconds=segment_s),
                    byte_size=stored.byte_size,
                    sha256=stored.sha256,
                )
            )
    return events


def _cuts(
    chunk_s: float, reconnect_s: float | None, end_s: float
) -> Iterator[tuple[float, float, float]]:
    """(segment start, chunk start, chunk end) in seconds of the call: chunks of ``chunk_s``
    from each segment's start."""
    segments = [(0.0, end_s)] if reconnect_s is None else [(0.0, reconnect_s), (reconnect_s, end_s)]
    for segment_s, segment_end in segments:
        lo = segment_s
        while lo < segment_end:
            hi = min(lo + chunk_s, segment_end)
            yield segment_s, lo, hi
            lo = hi


def shuffled_twice(events: list[Event], rng: random.Random) -> list[Event]:
    """Turns first, then chunks, each in any order, a third of them sent twice."""
    turns: list[Event] = [e for e in events if not isinstance(e, ChunkReady)]
    chunks: list[Event] = [e for e in events if isinstance(e, ChunkReady)]
    out: list[Event] = []
    for part in (turns, chunks):
        part = part + rng.sample(part, len(part) // 3)
        rng.shuffle(part)
        out += part
    return out


def samples_of(body: bytes) -> tuple[int, npt.NDArray[np.int16]]:
    with wave.open(io.BytesIO(body)) as clip:
        frames = np.frombuffer(clip.readframes(clip.getnframes()), dtype="<i2")
        return clip.getframerate(), frames.reshape(-1, clip.getnchannels())


def dominant_hz(samples: npt.NDArray[np.int16], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def sounding(samples: npt.NDArray[np.int16], rate: int) -> tuple[float, float]:
    """When the first and the last 20 ms frame with a tone in it begin, in seconds."""
    frame = round(FRAME_S * rate)
    loud = [
        n * FRAME_S
        for n in range(len(samples) // frame)
        if np.abs(samples[n * frame : (n + 1) * frame].astype(np.int32)).max() > 2_000
    ]
    return loud[0], loud[-1] + FRAME_S
