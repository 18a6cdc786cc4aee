"""The on-disk spool: where events wait while Kafka is slow or down, across bot restarts.

Records are appended to segment files, each framed as ``length | crc32 | payload`` and fsynced
per batch, so a crash loses at most the batch being written and a torn record at the tail is
recognised and cut off on the next open. Delivery is tracked by a committed cursor that only
moves when Kafka has acknowledged the records, so a record read but not acknowledged when the
process stops is read again after the restart (at-least-once; consumers deduplicate).

Segments are numbered; reading starts at the lowest number. ``prepend`` writes below the lowest,
which lets a stopping producer put events it still held in memory, older than anything spooled,
in front of the spool without breaking per-session order.

A spool belongs to one process at a time: processes given the same folder (the jobs of a
worker, say) each ``claim`` a numbered slot in it, locked while the process lives. The kernel
drops the lock however the process ends, so the next process to start takes the slot over with
whatever it holds.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import os
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import structlog

log = structlog.get_logger(__name__)

_HEADER = struct.Struct("<II")
_FIELD = struct.Struct("<H")
_SUFFIX = ".seg"
_CURSOR = "cursor.json"
_NUMBER = re.compile(r"-?[0-9]+")
"""Segment numbers: ``prepend`` goes below zero."""
_SMALLEST = 2 * _FIELD.size
"""The shortest payload: a record's topic and key lengths."""
_UNREADABLE = frozenset({errno.EIO, errno.EBADMSG, errno.EUCLEAN})
"""The disk's own read errors (a bad sector, a checksum that does not match): running out of
file descriptors or memory, say, passes, and does not give a segment up."""
UNREADABLE_AFTER = 5
"""Failed reads of a segment in a row (each after a failed attempt's pause) before it is given
up."""


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


@dataclass(frozen=True, order=True)
class SpoolPosition:
    """Just after a record: committing it marks that record and all before it delivered."""

    segment: int
    offset: int


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


def _decoded(payload: bytes | None) -> SpoolRecord | None:
    try:
        return None if payload is None else SpoolRecord.decode(payload)
    except (ValueError, struct.error):
        return None


def cut_at(path: Path, offset: int, end: int) -> None:
    """Truncate a file of frames where its first bad frame begins (see ``cut_torn_tail``)."""
    log.warning("spool_tail_cut", file=path.name, kept=offset, cut=end - offset)
    with path.open("r+b") as handle:
        handle.truncate(offset)
        os.fsync(handle.fileno())


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int = 16 * 1024 * 1024,
        lock: int | None = None,
    ) -> None:
        """``lock``: the descriptor holding this process's claim on ``directory``, if any."""
        self._lock = lock
        self.directory = directory
        self.max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._committed: dict[int, int] = self._load_cursor()
        self._sizes = {seg: path.stat().st_size for seg, path in numbered(directory, _SUFFIX)}
        self._unchecked = set(self._sizes)
        """Segments a crash may have left with a torn tail, not read through since the open.
        Opening reads none of them: a bot that starts over a full spool is not held up while
        half a gigabyte is checked on its own thread. A torn tail is cut where reading meets
        it, or before anything is appended behind it."""
        self._read_failures: dict[int, int] = {}
        self._committed = {
            seg: min(offset, self._sizes[seg])
            for seg, offset in self._committed.items()
            if seg in self._sizes
        }
        self._read = {seg: self._committed.get(seg, 0) for seg in self._sizes}
        self._sealed: set[int] = set()
        """Segments with a torn tail that could not be cut off: appended to no more."""

    @classmethod
    def claim(cls, base: Path, *, max_bytes: int) -> Spool:
        """The spool of the first slot under ``base`` that no living process holds."""
        base.mkdir(parents=True, exist_ok=True)
        for n in itertools.count():
            slot = base / f"slot-{n}"
            slot.mkdir(exist_ok=True)
            lock = os.open(slot / "lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock)
                continue
            return cls(slot, max_bytes=max_bytes, lock=lock)
        raise AssertionError("unreachable")

    def release(self) -> None:
        """Give the slot up (the process goes on without this spool)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @property
    def pending_bytes(self) -> int:
        """Bytes of records not yet delivered: what ``max_bytes`` bounds."""
        return sum(size - self._committed.get(seg, 0) for seg, size in self._sizes.items())

    def is_empty(self) -> bool:
        """True when every spooled record has been delivered and committed."""
        return all(self._committed.get(seg, 0) >= size for seg, size in self._sizes.items())

    def has_unread(self) -> bool:
        return any(self._read[seg] < size for seg, size in self._sizes.items())

    def append(self, records: Sequence[SpoolRecord]) -> int:
        """Write records at the tail and fsync; returns how many fit under ``max_bytes``."""
        frames = self._fitting(records)
        if frames:
            tail = max(self._sizes, default=None)
            if tail is None:
                tail = 0
            else:
                self._check_tail(tail)
                if self._sizes[tail] >= self._segment_bytes or tail in self._sealed:
                    tail += 1
            self._write(tail, b"".join(frames))
        return len(frames)

    def prepend(self, records: Sequence[SpoolRecord]) -> int:
        """Write records in front of everything spooled (a new lowest segment) and fsync."""
        frames = self._fitting(records)
        if frames:
            self._write(min(self._sizes, default=1) - 1, b"".join(frames))
        return len(frames)

    def read(self, max_records: int) -> list[tuple[SpoolPosition, SpoolRecord]]:
        """The next unread records in order; reading does not commit them.

        A segment the disk fails to read raises, for a later attempt, unless records were read
        before it, which are returned first. One that fails ``UNREADABLE_AFTER`` attempts
        running with the disk's own read errors (``_UNREADABLE``) is given up, so that the
        disk's fault does not hold back every event spooled after it."""
        out: list[tuple[SpoolPosition, SpoolRecord]] = []
        for seg in sorted(self._sizes):
            if self._read[seg] >= self._sizes[seg]:
                continue
            try:
                self._read_segment(seg, out, max_records)
            except OSError as exc:
                if out:
                    return out
                failures = self._read_failures.get(seg, 0) + 1
                if exc.errno not in _UNREADABLE or failures < UNREADABLE_AFTER:
                    self._read_failures[seg] = failures
                    raise
                self._give_up(seg, failures)
                continue
            self._read_failures.pop(seg, None)
            if len(out) >= max_records:
                break
        return out

    def _read_segment(
        self, seg: int, out: list[tuple[SpoolPosition, SpoolRecord]], max_records: int
    ) -> None:
        """Read on in one segment into ``out``; a torn or corrupt frame ends the segment."""
        offset, end = self._read[seg], self._sizes[seg]
        try:
            with self._path(seg).open("rb") as segment:
                segment.seek(offset)
                while len(out) < max_records and offset < end:
                    payload = read_frame(segment, end)
                    record = _decoded(payload)
                    if record is None:
                        self._cut(seg, offset)
                        break
                    offset = segment.tell()
                    out.append((SpoolPosition(seg, offset), record))
        finally:
            self._read[seg] = offset  # what is in ``out`` is read, even if the disk then fails
        if offset >= self._sizes[seg]:
            self._unchecked.discard(seg)

    def _cut(self, seg: int, offset: int) -> None:
        """End a segment where its first bad frame begins; appends go on from there."""
        end = self._sizes[seg]
        self._sizes[seg] = offset
        self._unchecked.discard(seg)
        try:
            cut_at(self._path(seg), offset, end)
        except OSError:
            self._sealed.add(seg)

    def _check_tail(self, seg: int) -> None:
        """Cut a torn tail off a segment before appending behind it; one that cannot be read or
        cut is appended to no more."""
        if seg not in self._unchecked:
            return
        self._unchecked.discard(seg)
        try:
            self._sizes[seg] = cut_torn_tail(self._path(seg))[1]
        except OSError:
            self._sealed.add(seg)
        self._committed[seg] = min(self._committed.get(seg, 0), self._sizes[seg])
        self._read[seg] = min(self._read[seg], self._sizes[seg])

    def _give_up(self, seg: int, attempts: int) -> None:
        """End an unreadable segment where reading stopped: what it holds beyond is lost. It
        keeps its number, so that records read from it before, still to be acknowledged, are
        committed against it and nothing written after takes their place; it is deleted
        once they are, as any segment."""
        self._read_failures.pop(seg, None)
        log.error(
            "spool_segment_unreadable",
            file=self._path(seg).name,
            bytes_lost=self._sizes[seg] - self._read[seg],
            attempts=attempts,
        )
        self._sizes[seg] = self._read[seg]
        self._unchecked.discard(seg)
        self._sealed.add(seg)

    def commit(self, position: SpoolPosition) -> None:
        """Mark everything up to ``position`` delivered; fully delivered segments are deleted."""
        for seg in sorted(self._sizes):
            if seg > position.segment:
                break
            done = self._sizes[seg] if seg < position.segment else position.offset
            self._committed[seg] = max(self._committed.get(seg, 0), done)
        self._save_cursor()
        for seg in [s for s, size in self._sizes.items() if self._committed.get(s, 0) >= size]:
            if seg != max(self._sizes):
                self._delete(seg)

    def _fitting(self, records: Sequence[SpoolRecord]) -> list[bytes]:
        budget = self.max_bytes - self.pending_bytes
        frames: list[bytes] = []
        for record in records:
            frame = frame_of(record)
            if len(frame) > budget:
                break
            budget -= len(frame)
            frames.append(frame)
        return frames

    def _write(self, seg: int, data: bytes) -> None:
        """Append ``data`` to a segment and fsync; on failure (a full disk) none of it counts
        as written, and what part of it reached the file is cut off again (see ``_cut_back``)."""
        created = seg not in self._sizes
        try:
            with self._path(seg).open("ab") as segment:
                segment.write(data)
                segment.flush()
                os.fsync(segment.fileno())
            if created:
                fsync_directory(self.directory)
        except OSError:
            self._cut_back(seg, created)
            raise
        if created:
            self._sizes[seg] = 0
            self._read[seg] = 0
        self._sizes[seg] += len(data)

    def _cut_back(self, seg: int, created: bool) -> None:
        """After a failed write: a new segment goes, an old one is cut back to what it held, so
        that the next write does not follow a torn frame (reading would take it for a record).
        A segment that cannot be cut is appended to no more."""
        path = self._path(seg)
        try:
            if created:
                path.unlink(missing_ok=True)
            else:
                os.truncate(path, self._sizes[seg])
        except OSError:
            self._sealed.add(seg)
            if created:  # held empty, so that no write takes its number and goes behind it
                self._sizes[seg] = self._read[seg] = 0

    def _delete(self, seg: int) -> None:
        self._path(seg).unlink(missing_ok=True)
        for table in (self._sizes, self._read, self._committed):
            table.pop(seg, None)
        self._unchecked.discard(seg)
        self._save_cursor()

    def _path(self, seg: int) -> Path:
        return self.directory / f"{seg}{_SUFFIX}"

    def _load_cursor(self) -> dict[int, int]:
        path = self.directory / _CURSOR
        if not path.exists():
            return {}
        return {int(seg): int(offset) for seg, offset in json.loads(path.read_text()).items()}

    def _save_cursor(self) -> None:
        path = self.directory / _CURSOR
        staged = path.with_suffix(".tmp")
        staged.write_text(json.dumps({str(s): o for s, o in self._committed.items()}))
        with staged.open("rb") as handle:
            os.fsync(handle.fileno())
        staged.replace(path)


def fsync_directory(directory: Path) -> None:
    """Make a file's creation or deletion survive a power loss, not only its contents."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def numbered(directory: Path, suffix: str) -> list[tuple[int, Path]]:
    """The files ``<number><suffix>`` in ``directory``, by number; other names are left be."""
    found = []
    for path in directory.glob(f"*{suffix}"):
        number = path.name.removesuffix(suffix)
        if _NUMBER.fullmatch(number):
            found.append((int(number), path))
    return sorted(found)
