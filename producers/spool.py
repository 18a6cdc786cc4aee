"""The on-disk spool: where events wait while Kafka is slow or down, across bot restarts.

Records are appended to segment files, framed (``producers.frames``) and fsynced per batch, so
a crash loses at most the batch being written, and a torn record is recognised and cut off
where reading meets it, or before anything is appended behind it. Delivery is tracked by a
committed cursor that only moves when Kafka has acknowledged the records, so a record read but
not acknowledged when the process stops is read again after the restart (at-least-once;
consumers deduplicate).

Segments are numbered; reading starts at the lowest number. ``prepend`` writes below the lowest,
which lets a stopping producer put events it still held in memory, older than anything spooled,
in front of the spool without breaking per-session order.

A spool belongs to one process at a time: ``claim`` takes a slot of the folder it is given,
locked while the process lives (``producers.spool_slot``).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import structlog

from producers.frames import (
    SpoolRecord,
    cut_at,
    cut_torn_tail,
    decoded,
    frame_of,
    fsync_directory,
    numbered,
    read_frame,
)
from producers.spool_cursor import load_cursor, save_cursor
from producers.spool_slot import free_slot, unavailable

log = structlog.get_logger(__name__)

_SUFFIX = ".seg"
_UNREADABLE = frozenset({errno.EIO, errno.EBADMSG, errno.EUCLEAN})
"""The disk's own read errors (a bad sector, a checksum that does not match): running out of
file descriptors or memory, say, passes, and does not give a segment up."""
UNREADABLE_AFTER = 5
"""Failed reads of a segment in a row (each after a failed attempt's pause) before it is given
up."""


@dataclass(frozen=True, order=True)
class SpoolPosition:
    """Just after a record: committing it marks that record and all before it delivered."""

    segment: int
    offset: int


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int = 16 * 1024 * 1024,
        lock: int | None = None,
        claimed: bool = True,
    ) -> None:
        """``lock``: the descriptor holding this process's claim on ``directory``, if any.
        ``claimed``: False when ``directory`` is the folder ``claim`` found no slot in. Then,
        as when ``directory`` cannot be read, the spool is not ``usable``: it holds nothing
        and every write to it fails (delivery counts what it could not spool as dropped), so
        that a bot whose spool folder is on a read-only file system runs, its events waiting
        in memory for Kafka, instead of failing to start; ``reopen`` tries again."""
        self._lock = lock
        self.directory = directory
        self._base = None if claimed else directory
        """Where ``reopen`` looks for a slot, while none is claimed."""
        self._released = False
        self._claiming = threading.Lock()
        """Between a claim that ``reopen`` makes on the delivery thread and ``release`` on
        the bot's (a close that gave up waiting for that thread): one of them closes the
        slot's lock, once."""
        self.max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._usable = False
        self._committed: dict[int, int] = {}
        self._sizes: dict[int, int] = {}
        self._read: dict[int, int] = {}
        self._unchecked: set[int] = set()
        """Segments a crash may have left with a torn tail, not read through since the open.
        Opening reads none of them: a bot that starts over a full spool is not held up while
        half a gigabyte is checked on its own thread. A torn tail is cut where reading meets
        it, or before anything is appended behind it."""
        self._from_cursor: set[int] = set()
        """Segments whose reading starts where the cursor says, no frame read there yet: a
        cursor damaged into a well-formed offset inside a frame made that frame look bad, and
        the cut there lost every record after it."""
        self._read_failures: dict[int, int] = {}
        self._sealed: set[int] = set()
        """Segments with a torn tail that could not be cut off: appended to no more."""
        if claimed:
            self._open(report=True)

    def _open(self, *, report: bool) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            committed = load_cursor(self.directory)
            sizes = {s: path.stat().st_size for s, path in numbered(self.directory, _SUFFIX)}
        except OSError as exc:
            if report:
                unavailable(self.directory, exc)
            return
        self._usable = True
        self._sizes = sizes
        self._unchecked = set(sizes)
        self._committed = {
            seg: min(offset, sizes[seg]) for seg, offset in committed.items() if seg in sizes
        }
        self._read = {seg: self._committed.get(seg, 0) for seg in sizes}
        self._from_cursor = {seg for seg, offset in self._read.items() if offset > 0}

    @classmethod
    def claim(cls, base: Path, *, max_bytes: int) -> Spool:
        """The spool of the first slot under ``base`` that no living process holds; an
        unusable one if none can be claimed (see ``usable``)."""
        try:
            slot, lock = free_slot(base)
        except OSError as exc:
            unavailable(base, exc)
            return cls(base, max_bytes=max_bytes, claimed=False)
        return cls(slot, max_bytes=max_bytes, lock=lock)

    def reopen(self) -> bool:
        """Try again to make an unusable spool usable, quietly: claim a slot, or open the one
        claimed. What failed at the start may have passed (no file descriptors left, a volume
        mounted late), and the bot would otherwise run without a spool for the rest of its
        life. Whether the spool is usable now."""
        if self._usable:
            return True
        if self._released:
            return False
        if self._base is not None:
            try:
                slot, lock = free_slot(self._base)
            except OSError:
                return False
            with self._claiming:
                if self._released:  # by a close that did not wait for this
                    os.close(lock)
                    return False
                self.directory, self._lock, self._base = slot, lock, None
        self._open(report=False)
        return self._usable

    def release_in_child(self) -> None:
        """``release``, in a child process this one forked: with a new guard, as a thread of
        the parent may have held it at the fork, and no thread of the child lets it go."""
        self._claiming = threading.Lock()
        self.release()

    def release(self) -> None:
        """Give the slot up (the process goes on without this spool), and claim none later."""
        with self._claiming:
            self._released = True
            lock, self._lock = self._lock, None
        if lock is not None:
            os.close(lock)

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

    @property
    def usable(self) -> bool:
        """Whether the spool holds anything and takes writes (see ``__init__``)."""
        return self._usable

    def prepend(self, records: Sequence[SpoolRecord]) -> int:
        """Write records in front of everything spooled (a new lowest segment) and fsync, all
        of them, past ``max_bytes`` if need be: they are what a process held in memory (at
        most its queue's bound), older than anything spooled, and refused they were kept
        nowhere but a journal, to be sent by a later process after newer events of their
        sessions."""
        if records:
            self._write(min(self._sizes, default=1) - 1, b"".join(map(frame_of, records)))
        return len(records)

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
                    record = decoded(read_frame(segment, end))
                    if record is None:
                        start = self._frame_around(seg, segment, offset, end)
                        if start is None:
                            self._cut(seg, offset)
                            break
                        offset = start
                        segment.seek(offset)
                        continue
                    self._from_cursor.discard(seg)
                    offset = segment.tell()
                    out.append((SpoolPosition(seg, offset), record))
        finally:
            self._read[seg] = offset  # what is in ``out`` is read, even if the disk then fails
        if offset >= self._sizes[seg]:
            self._unchecked.discard(seg)

    def _frame_around(self, seg: int, segment: BinaryIO, offset: int, end: int) -> int | None:
        """Where the frame that the cursor's ``offset`` falls inside begins, found by reading
        the segment's frames from its start, when the cursor is what put reading there; None
        when ``offset`` is a frame's own start (the frame there is bad) or the frames before
        it are. Reading goes on from that frame's start, sending it again (consumers
        deduplicate) rather than losing the rest of the segment."""
        if seg not in self._from_cursor:
            return None
        segment.seek(0)
        start = 0
        found = None
        while start < offset:  # a disk error raises, and the next attempt walks again
            if decoded(read_frame(segment, end)) is None:
                break
            if segment.tell() > offset:
                log.warning(
                    "spool_cursor_inside_a_record",
                    file=self._path(seg).name,
                    cursor=offset,
                    record_at=start,
                )
                found = start
                break
            start = segment.tell()
        self._from_cursor.discard(seg)
        return found

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
        save_cursor(self.directory, self._committed)
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
        if not self._usable:
            raise OSError(errno.ENOENT, "the spool's folder could not be used", str(self.directory))
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
        self._from_cursor.discard(seg)
        save_cursor(self.directory, self._committed)

    def _path(self, seg: int) -> Path:
        return self.directory / f"{seg}{_SUFFIX}"
