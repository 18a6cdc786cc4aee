"""Single-object framing and the CRC-64-AVRO fingerprint, checked against the Avro spec."""

from __future__ import annotations

import pytest

from schemas.registry import SchemaRegistry, crc64_avro_fingerprint
from schemas.single_object import FramingError, frame, unframe

_EMPTY = 0xC15D213AA4D7A795


def _spec_fingerprint64(canonical: bytes) -> int:
    """The reference algorithm printed in the Avro specification, written out independently."""
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    fp = _EMPTY
    for byte in canonical:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_fingerprint_is_the_spec_crc64_in_little_endian() -> None:
    assert _spec_fingerprint64(b'"null"') == 7195948357588979594  # spec test vector
    assert crc64_avro_fingerprint("null") == (7195948357588979594).to_bytes(8, "little")


def test_every_shipped_schema_fingerprint_matches_the_spec_algorithm() -> None:
    from fastavro.schema import to_parsing_canonical_form

    registry = SchemaRegistry.from_folder()
    for name in registry.names():
        for version in registry.history(name):
            canonical = to_parsing_canonical_form(version.parsed).encode()
            expected = _spec_fingerprint64(canonical).to_bytes(8, "little")
            assert version.fingerprint == expected, version.label


def test_frame_round_trip() -> None:
    fp, body = unframe(frame(b"\x01" * 8, b"body"))
    assert fp == b"\x01" * 8
    assert bytes(body) == b"body"


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (b"", "shorter than"),
        (b"\xc3\x01\x00", "shorter than"),
        (b"\x00" * 12, "missing single-object marker"),
        (b"\x00\x00\x00\x00\x01" + b"x" * 8, "missing single-object marker"),
    ],
)
def test_unframe_refuses_what_is_not_a_single_object_message(message: bytes, match: str) -> None:
    with pytest.raises(FramingError, match=match):
        unframe(message)


def test_frame_refuses_a_wrong_sized_fingerprint() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        frame(b"short", b"")
