"""The write-ahead journal: accepted events that only the memory queue holds, put on disk.

An event in the memory queue is lost with the process until Kafka acknowledges it, and with a
slow broker that can take seconds. Writing and fsyncing each one as it is accepted would cost a
syscall per event while most are acknowledged within milliseconds, so the delivery thread writes
in groups: a fraction of the durability window after taking an event in, it writes every event
still unacknowledged and fsyncs once. Acknowledged groups are deleted. The next process puts what
it finds here in front of the spool before it sends anything, so sessions stay in order;
events acknowledged after their group was written are sent twice, which consumers absorb.

Files are numbered segments of the spool's frames (CRC-checked, a torn tail is cut off on
recovery). Each remembers the index one past the last event it holds, in the count of events
that went through the memory queue, so that acknowledgements, which come in queue order, tell
when a whole segment is no longer needed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import structlog

from producers.frames import (
    SpoolRecord,
    cut_torn_tail,
    decoded,
    frame_of,
    fsync_directory,
    numbered,
)

log = structlog.get_logger(__name__)

_SUFFIX = ".wal"


class Journal:
    def __init__(self, directory: Path | None, *, segment_bytes: int = 4 * 1024 * 1024) -> None:
        """``directory``: None for no journal, beside a spool that could not be claimed: no
        later process would recover it, and the processes that failed to claim one would
        share it."""
        self.directory = directory
        self._segment_bytes = segment_bytes
        found: list[tuple[int, Path]] = []
        if directory is not None:
            try:
                directory.mkdir(parents=True, exist_ok=True)
                found = numbered(directory, _SUFFIX)
            except OSError as exc:
                log.warning(
                    "journal_unavailable",
                    directory=str(directory),
                    error=str(exc),
                    detail="events waiting in memory are not safe from a kill",
                )
                self.directory = None
        self._found = [path for _, path in found]
        self._next_segment = found[-1][0] + 1 if found else 0
        self._ends: list[tuple[int, int]] = []
        """(segment, end index) of this process's segments, oldest first."""
        self._active: int | None = None
        self._active_size = 0

    def recover(self) -> list[SpoolRecord]:
        """What an earlier process left unacknowledged, in acceptance order."""
        payloads = [payload for path in self._found for payload in cut_torn_tail(path)[0]]
        records = [r for r in map(decoded, payloads) if r is not None]
        if len(records) < len(payloads):  # one bad record must not cost the others
            log.warning("journal_records_undecodable", count=len(payloads) - len(records))
        return records

    def forget_recovered(self) -> None:
        """Delete what ``recover`` returned, once it is safe elsewhere (the spool)."""
        for path in self._found:
            path.unlink(missing_ok=True)
        if self._found and self.directory is not None:
            fsync_directory(self.directory)
        self._found = []

    def write(self, records: Sequence[SpoolRecord], end: int) -> None:
        """Append records and fsync; ``end`` is the index just past the last of them."""
        if not records or self.directory is None:
            return
        if self._active is None:
            self._open()
        assert self._active is not None
        data = b"".join(frame_of(r) for r in records)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._active, view) :]
            os.fsync(self._active)
        except OSError:
            self._abandon_active()
            raise
        self._active_size += len(data)
        segment = self._ends[-1][0]
        self._ends[-1] = (segment, end)
        if self._active_size >= self._segment_bytes:
            self._close_active()

    def trim(self, acknowledged: int) -> None:
        """Delete segments all of whose events have been acknowledged (index < acknowledged)."""
        while self._ends and self._ends[0][1] <= acknowledged:
            segment, _ = self._ends.pop(0)
            if not self._ends:
                self._close_active()
            self._path(segment).unlink(missing_ok=True)

    def close(self, *, keep: bool = False) -> None:
        """Delete this process's segments, once their events are safe elsewhere; ``keep``
        them when they are not (the spool refused them), for the next process to recover."""
        if not keep:
            self.trim(self._ends[-1][1] if self._ends else 0)
        self._close_active()

    def _open(self) -> None:
        segment = self._next_segment
        self._next_segment += 1
        self._active = os.open(
            self._path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644
        )
        self._active_size = 0
        self._ends.append((segment, 0))
        fsync_directory(self._path(segment).parent)

    def _abandon_active(self) -> None:
        """After a failed write: cut what part of it reached the file, which recovery would
        otherwise take for a torn tail and cut with every group written after it, and go on in
        a new segment."""
        assert self._active is not None
        with contextlib.suppress(OSError):
            os.ftruncate(self._active, self._active_size)
        self._close_active()

    def _close_active(self) -> None:
        if self._active is not None:
            os.close(self._active)
            self._active = None

    def _path(self, segment: int) -> Path:
        assert self.directory is not None, "no segment is written without a directory"
        return self.directory / f"{segment}{_SUFFIX}"
