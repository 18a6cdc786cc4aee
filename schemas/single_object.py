"""Avro single-object encoding framing (Avro spec, "Single-object encoding").

A message is the two-byte marker C3 01, the 8-byte little-endian CRC-64-AVRO fingerprint of the
writer schema's parsing canonical form, then the Avro binary body. The fingerprint lets a reader
find the writer schema among the versions it ships, with no registry server. Framing is kept apart
from schema lookup so that a Confluent-style frame (magic byte 0 + registry id) can be added
beside it without touching the codec's callers.
"""

from __future__ import annotations

MARKER = b"\xc3\x01"
FINGERPRINT_SIZE = 8
HEADER_SIZE = len(MARKER) + FINGERPRINT_SIZE


class FramingError(ValueError):
    """The bytes are not a single-object encoded Avro message."""


def frame(fingerprint: bytes, body: bytes) -> bytes:
    if len(fingerprint) != FINGERPRINT_SIZE:
        raise ValueError(f"fingerprint must be {FINGERPRINT_SIZE} bytes, got {len(fingerprint)}")
    return MARKER + fingerprint + body


def unframe(message: bytes) -> tuple[bytes, memoryview]:
    """Split a message into (fingerprint, body) without copying the body."""
    if len(message) < HEADER_SIZE:
        raise FramingError(
            f"message of {len(message)} bytes is shorter than the {HEADER_SIZE}-byte header"
        )
    if message[:2] != MARKER:
        raise FramingError(f"missing single-object marker c301, found {message[:2].hex()}")
    view = memoryview(message)
    return bytes(view[2:HEADER_SIZE]), view[HEADER_SIZE:]
