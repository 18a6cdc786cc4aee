"""Encode and decode throughput of the event codec (framing, Avro, validation).

``decode_eps`` is one event at a time (fastavro and the pydantic models, as tools and tests
decode); ``bulk_decode_eps`` is how the projector decodes: each writer version's messages read
together into columns and checked against the models' rules on whole columns.
JSON keys: ``events``, ``encode_eps``, ``decode_eps``, ``bulk_decode_eps``, ``bytes_per_event``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bench.report import run
from schemas import ChunkReady, EventCodec, ProducerInfo, TurnStarted, TurnStopped
from schemas.checks import checks, first_broken
from schemas.models import EVENT_MODELS, Event
from schemas.single_object import HEADER_SIZE

_PRODUCER = ProducerInfo(framework="bench", framework_version="1.14.0", library_version="0.1.0")
_TEXT = "Sorry to hear that, could you tell me the order number so I can look it up for you? "


def realistic_events(count: int, *, start: int = 0, session_id: str | None = None) -> list[Event]:
    """A call's mix: per turn a start and a stop with a sentence or two, and audio chunks.

    Events ``start`` to ``start + count`` of a stream of 60-event sessions, or ``count`` events
    of the one session ``session_id``.
    """
    origin = datetime(2026, 11, 21, tzinfo=UTC)
    events: list[Event] = []
    for n in range(start, start + count):
        at = origin + timedelta(milliseconds=700 * n)
        common = {
            "session_id": session_id or f"session-{n // 60:06d}",
            "bot_id": "support-bot",
            "seq": n - start if session_id else n % 60,
            "occurred_at": at,
            "producer": _PRODUCER,
        }
        turn = {"turn_id": f"turn-{n // 3}", "role": "assistant", "started_at": at}
        kind = n % 3
        if kind == 0:
            events.append(TurnStarted(**common, **turn))
        elif kind == 1:
            stop = at + timedelta(seconds=3)
            events.append(TurnStopped(**common, **turn, stopped_at=stop, text=_TEXT[: 40 + n % 45]))
        else:
            events.append(
                ChunkReady(
                    **common,
                    chunk_id=f"chunk-{n}",
                    track="user",
                    chunk_seq=n // 3,
                    uri=f"file:///var/lib/tstore/chunks/{common['session_id']}/user-{n}.wav",
                    format="wav",
                    sample_rate=16000,
                    channels=1,
                    start_sample=16000 * n,
                    num_samples=16000,
                    recording_started_at=origin,
                    byte_size=32044,
                    sha256="ab" * 32,
                )
            )
    return events


def measure(count: int) -> dict[str, float]:
    codec = EventCodec()
    events = realistic_events(count)
    began = time.perf_counter()
    messages = [codec.encode(e) for e in events]
    encoded = time.perf_counter()
    for message in messages:
        codec.decode(message)
    decoded = time.perf_counter()
    by_writer: dict[bytes, list[bytes]] = {}
    for message in messages:
        by_writer.setdefault(message[:HEADER_SIZE], []).append(message)
    rules = {model.schema_name: checks(model) for model in EVENT_MODELS}
    for header, same in by_writer.items():
        writer, _ = codec.writer_of(header)
        first_broken(codec.bulk.read(writer, same).frame, rules[writer.name])
    bulk_decoded = time.perf_counter()
    return {
        "events": count,
        "encode_eps": count / (encoded - began),
        "decode_eps": count / (decoded - encoded),
        "bulk_decode_eps": count / (bulk_decoded - decoded),
        "bytes_per_event": sum(map(len, messages)) / count,
    }


if __name__ == "__main__":
    run(__doc__ or "", 100_000, measure)
