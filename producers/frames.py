"""How records lie on disk, in the spool and in the journal: each framed as
``length | crc32 | payload``, so that a torn or corrupt frame (a crash's half-done write, the
disk's damage) is recognised, and what follows it cut off.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import structlog

log = structlog.get_logger(__name__)

_HEADER = struct.Struct("<II")
_FIELD = struct.Struct("<H")
_SMALLEST = 2 * _FIELD.size
"""The shortest payload: a record's topic and key lengths."""
_NUMBER = re.compile(r"-?[0-9]+")
"""File numbers: the spool's ``prepend`` goes below zero."""


@dataclass(frozen=True)
class SpoolRecord:
    topic: str
    key: bytes
    value: bytes

    def encode(self) -> bytes:
        topic = self.topic.encode()
        return _FIELD.pack(len(topic)) + topic + _FIELD.pack(len(self.key)) + self.key + self.value

    @classmethod
    def decode(cls, payload: bytes) -> SpoolRecord:
        """Raises ValueError for what no ``encode`` wrote."""
        (topic_len,) = _FIELD.unpack_from(payload, 0)
        topic_end = _FIELD.size + topic_len
        if topic_end + _FIELD.size > len(payload):
            raise ValueError("a spool record's lengths overrun it")
        (key_len,) = _FIELD.unpack_from(payload, topic_end)
        key_end = topic_end + _FIELD.size + key_len
        if key_end > len(payload):
            raise ValueError("a spool record's lengths overrun it")
        return cls(
            payload[_FIELD.size : topic_end].decode(),
            payload[topic_end + _FIELD.size : key_end],
            payload[key_end:],
        )


def frame_of(record: SpoolRecord) -> bytes:
    """The record as written to disk, with what recognises a torn or corrupt copy of it."""
    payload = record.encode()
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_frame(handle: BinaryIO, end: int) -> bytes | None:
    """The payload of the frame at the handle's position, or None where no whole, intact frame
    ends by ``end`` (a torn or corrupt one)."""
    start = handle.tell()
    header = handle.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    length, crc = _HEADER.unpack(header)
    if length < _SMALLEST or start + _HEADER.size + length > end:
        return None  # zeros (a crash's unwritten blocks) pass the CRC, but no record is empty
    payload = handle.read(length)
    if len(payload) < length or zlib.crc32(payload) != crc:
        return None
    return payload


def cut_torn_tail(path: Path) -> tuple[list[bytes], int]:
    """The payloads of a file of frames and their length; a torn or corrupt tail is cut off.

    A crash can leave the last write half done; what follows the first bad frame cannot be
    trusted, and is truncated so that appends go on from a clean end.
    """
    payloads: list[bytes] = []
    with path.open("rb") as handle:
        end = os.fstat(handle.fileno()).st_size
        offset = 0
        while (payload := read_frame(handle, end)) is not None:
            payloads.append(payload)
            offset = handle.tell()
    if offset < end:
        cut_at(path, offset, end)
    return payloads, offset


def cut_at(path: Path, offset: int, end: int) -> None:
    """Truncate a file of frames where its first bad frame begins (see ``cut_torn_tail``)."""
    log.warning("spool_tail_cut", file=path.name, kept=offset, cut=end - offset)
    with path.open("r+b") as handle:
        handle.truncate(offset)
        os.fsync(handle.fileno())


def fsync_directory(directory: Path) -> None:
    """Make a file's creation or deletion survive a power loss, not only its contents."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def numbered(directory: Path, suffix: str) -> list[tuple[int, Path]]:
    """The files ``<number><suffix>`` in ``directory``, by number; other names are left be.
    A folder that cannot be listed raises (``glob`` found nothing in it, and a journal then
    numbered its first file 0 again, over what was there)."""
    found = []
    for name in os.listdir(directory):
        number = name.removesuffix(suffix)
        if name.endswith(suffix) and _NUMBER.fullmatch(number):
            found.append((int(number), directory / name))
    return sorted(found)


def decoded(payload: bytes | None) -> SpoolRecord | None:
    """The record of an intact frame's payload, or None for what no ``encode`` wrote."""
    try:
        return None if payload is None else SpoolRecord.decode(payload)
    except (ValueError, struct.error):
        return None
