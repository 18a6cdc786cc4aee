from __future__ import annotations

import io

import pytest
from fastavro import schemaless_writer
from hypothesis import given

from schemas import DecodeError, EventCodec, TurnStopped
from schemas.models import Event
from schemas.single_object import frame
from tests.events import events, turn_pair

CODEC = EventCodec()


@given(events())
def test_every_event_survives_encode_then_decode(event: Event) -> None:
    assert CODEC.decode(CODEC.encode(event)) == event


def test_encoding_uses_single_object_framing_with_the_latest_fingerprint() -> None:
    started, _ = turn_pair()
    message = CODEC.encode(started)
    assert message[:2] == b"\xc3\x01"
    assert message[2:10] == CODEC.registry.latest(started.schema_name).fingerprint


def _decode_error(message: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(message)
    return caught.value


def test_random_bytes_are_refused_as_bad_framing() -> None:
    assert _decode_error(b"not avro at all").reason == "bad-framing"


def test_an_unknown_fingerprint_is_refused_and_named() -> None:
    error = _decode_error(frame(b"\xde\xad\xbe\xef" * 2, b"\x00"))
    assert error.reason == "unknown-fingerprint"
    assert "deadbeefdeadbeef" in error.detail


def test_a_truncated_body_is_refused() -> None:
    _, stopped = turn_pair()
    error = _decode_error(CODEC.encode(stopped)[:-7])
    assert error.reason == "bad-avro"
    assert "TurnStopped v2" in error.detail


def test_trailing_bytes_are_refused() -> None:
    started, _ = turn_pair()
    error = _decode_error(CODEC.encode(started) + b"\x00\x00")
    assert (error.reason, error.detail) == ("bad-avro", "TurnStarted v1: 2 bytes after the record")


def test_valid_avro_that_breaks_the_model_is_refused_with_the_field() -> None:
    _, stopped = turn_pair()
    writer = CODEC.registry.latest(stopped.schema_name)
    record = stopped.model_dump() | {"session_id": "", "seq": -3}
    body = io.BytesIO()
    schemaless_writer(body, writer.parsed, record)
    error = _decode_error(frame(writer.fingerprint, body.getvalue()))
    assert error.reason == "invalid"
    assert "session_id:" in error.detail
    assert "seq:" in error.detail


def test_a_v1_turn_stopped_reads_as_today_s_model_without_a_language() -> None:
    _, stopped = turn_pair()
    v1 = CODEC.registry.history(stopped.schema_name)[0]
    body = io.BytesIO()
    schemaless_writer(body, v1.parsed, stopped.model_dump(exclude={"language"}))
    decoded = CODEC.decode(frame(v1.fingerprint, body.getvalue()))
    assert decoded == stopped
    assert isinstance(decoded, TurnStopped)
    assert decoded.language is None

    tagged = stopped.model_copy(update={"language": "en-US"})
    assert CODEC.decode(CODEC.encode(tagged)) == tagged
