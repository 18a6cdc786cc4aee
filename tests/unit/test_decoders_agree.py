"""The columnar reader and the one-by-one reader agree on every input, and a bad record leaves
its batch alone: mutated frames (bit flips, truncations, extensions, varint and enum edge
values, random bytes) mixed with valid events, in batches."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.projections.audio_chunks import from_ready
from consumers.steps.decode import Decoded, decode
from schemas import ChunkReady, TurnStopped
from schemas.models import LATEST, MAX_SAMPLES
from schemas.single_object import HEADER_SIZE, frame
from schemas.wire import NOT_CANONICAL
from tests.decoders import (
    EDGE_BYTES,
    OVERLONG_VARINTS,
    columnar,
    disagreements,
    field_starts,
    one_by_one,
)
from tests.events import chunk, events, turn_pair
from tests.frames import CODEC, TOPICS, batch, decoded, record

Mutation = Callable[[bytes, int, st.DataObject], bytes]


def _flip(message: bytes, at: int, data: st.DataObject) -> bytes:
    bit = 1 << data.draw(st.integers(0, 7))
    return message[:at] + bytes([message[at] ^ bit]) + message[at + 1 :]


def _truncate(message: bytes, at: int, data: st.DataObject) -> bytes:
    return message[:at]


def _extend(message: bytes, at: int, data: st.DataObject) -> bytes:
    return message[:at] + data.draw(st.binary(min_size=1, max_size=8)) + message[at:]


def _edge(message: bytes, at: int, data: st.DataObject) -> bytes:
    return message[:at] + bytes([data.draw(st.sampled_from(EDGE_BYTES))]) + message[at + 1 :]


def _varint(message: bytes, at: int, data: st.DataObject) -> bytes:
    cut = data.draw(st.integers(1, 3))
    return message[:at] + data.draw(st.sampled_from(OVERLONG_VARINTS)) + message[at + cut :]


def _random(message: bytes, at: int, data: st.DataObject) -> bytes:
    return message[:HEADER_SIZE] + data.draw(st.binary(max_size=64))


MUTATIONS: tuple[Mutation, ...] = (_flip, _truncate, _extend, _edge, _varint, _random)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """An event's encoding, changed one to three times, mostly where a field begins."""
    event = draw(events())
    message = CODEC.encode(event)
    starts = field_starts(event)
    data = draw(st.data())
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3)):
        if len(message) <= HEADER_SIZE:
            break
        anywhere = st.integers(HEADER_SIZE, len(message) - 1)
        field = st.sampled_from([s for s in starts if s < len(message)] or [HEADER_SIZE])
        message = mutation(message, draw(st.one_of(field, anywhere)), data)
    return message


valid = events().map(CODEC.encode)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(valid, mutated()), min_size=1, max_size=12))
def test_both_readers_agree_on_every_record_of_any_batch(messages: list[bytes]) -> None:
    assert disagreements(messages) == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(valid, min_size=1, max_size=8),
    st.lists(mutated(), min_size=1, max_size=4),
    st.randoms(),
)
def test_every_valid_event_of_a_batch_is_projected(
    good: list[bytes], bad: list[bytes], order: object
) -> None:
    messages = good + bad
    order.shuffle(messages)  # type: ignore[attr-defined]
    found = columnar(messages)
    for message, event in zip(messages, found, strict=True):
        if message in good:
            assert event == one_by_one(message) != None  # noqa: E711


def _at(message: bytes, other: bytes) -> int:
    """Where two encodings of events that differ in one field first differ."""
    return next(i for i, (a, b) in enumerate(zip(message, other, strict=False)) if a != b)


_STOPPED = turn_pair()[1]


def _stopped(**changes: object) -> TurnStopped:
    return _STOPPED.model_copy(update=changes)


def _neighbours_kept(bad: bytes, says: str) -> None:
    good = [CODEC.encode(_stopped(turn_id=f"turn-{i}")) for i in range(40)]
    result = decoded_messages([*good[:20], bad, *good[20:]])
    assert result.frames[TurnStopped].height == 40
    assert [(r.reason, says in r.detail) for r in result.rejected] == [("bad-avro", True)]
    assert not result.rejected[0].detail.startswith("bad-avro"), "the reason is said once"
    assert one_by_one(bad) is None


def decoded_messages(messages: list[bytes]) -> Decoded:
    return decode(
        batch(record(TOPICS.turn_events, n, m) for n, m in enumerate(messages)), CODEC, TOPICS
    )


def test_an_enum_index_that_decodes_negative_takes_only_its_own_record() -> None:
    message = CODEC.encode(_stopped())
    at = _at(message, CODEC.encode(_stopped(role="assistant")))
    bad = message[:at] + b"\x01" + message[at + 1 :]
    _neighbours_kept(bad, "role: an enum index outside 0..1")


def test_a_varint_of_more_than_64_bits_takes_only_its_own_record() -> None:
    message = CODEC.encode(_stopped(seq=0))
    at = _at(message, CODEC.encode(_stopped(seq=1)))
    bad = message[:at] + b"\x80" * 10 + b"\x00" + message[at + 1 :]
    _neighbours_kept(bad, "")


@pytest.mark.parametrize("byte", [0x02, 0x03, 0x7F])
def test_a_boolean_byte_other_than_0_or_1_is_refused_by_both_readers(byte: int) -> None:
    message = CODEC.encode(_stopped())
    at = _at(message, CODEC.encode(_stopped(interrupted=True)))
    bad = message[:at] + bytes([byte]) + message[at + 1 :]
    _neighbours_kept(bad, "interrupted: a boolean byte other than 0 or 1")


def test_a_second_spelling_of_a_valid_record_is_refused_by_both_readers() -> None:
    message = CODEC.encode(_stopped(seq=0))
    at = _at(message, CODEC.encode(_stopped(seq=1)))
    bad = message[:at] + b"\x80\x00" + message[at + 1 :]
    _neighbours_kept(bad, NOT_CANONICAL)


def test_derived_values_of_the_largest_chunk_fit_their_columns() -> None:
    largest = chunk(
        start_sample=MAX_SAMPLES,
        num_samples=MAX_SAMPLES,
        sample_rate=1_000,
        recording_started_at=LATEST - timedelta(microseconds=1),
    )
    (row,) = from_ready(decoded([largest]).frames[ChunkReady]).iter_rows(named=True)
    assert row["end_ms"] == 2 * MAX_SAMPLES
    assert row["starts_at"] < row["ends_at"] < LATEST + timedelta(days=366 * 70)
    assert row["ends_at"].year < 2300


@pytest.mark.parametrize(
    "changes",
    [
        {"start_sample": 2**62, "sample_rate": 1},
        {"start_sample": 2**63 - 1, "num_samples": 2**63 - 1},
        {"recording_started_at": LATEST},
    ],
)
def test_a_chunk_whose_derived_values_would_overflow_is_refused(changes: dict[str, object]) -> None:
    fields = chunk().model_dump() | changes
    with pytest.raises(ValueError, match=r"less than|greater than"):
        ChunkReady.model_validate(fields)
    writer = CODEC.registry.latest(ChunkReady.schema_name)
    body = io.BytesIO()
    schemaless_writer(body, writer.parsed, fields | {"event_id": str(fields["event_id"])})
    message = frame(writer.fingerprint, body.getvalue())
    assert one_by_one(message) is None
    assert columnar([message]) == [None]


@pytest.mark.parametrize(("at", "char"), [(0, b" "), (0, b"+"), (1, b"_")])
def test_a_uuid_that_int_would_parse_is_refused_by_both_readers(at: int, char: bytes) -> None:
    """fastavro reads a UUID with ``uuid.UUID``, which parses with ``int``: a leading space or
    sign, or an underscore among the digits, read as another UUID (found by the test above)."""
    started, _ = turn_pair()
    message = CODEC.encode(started)
    where = message.index(str(started.event_id).encode()) + at
    bad = message[:where] + char + message[where + 1 :]
    assert one_by_one(bad) is None
    result = decoded_messages([bad])
    assert [(r.reason, r.detail) for r in result.rejected] == [
        ("invalid", "TurnStarted v1: event_id is not a UUID")
    ]
