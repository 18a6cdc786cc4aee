"""Spooling for the delivery thread, where what cannot be spooled is dropped, not raised.

What does not fit under ``spool_max_bytes``, or cannot be written at all (a full disk), is
dropped: counted in the stats and said sparsely (``sparse_log.py``). An OSError raised out of
the spool used to end the delivery thread, losing what its memory queue held uncounted, and
dropping every later event with a line each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from producers.frames import SpoolRecord
from producers.sparse_log import SparseLog
from producers.spool import Spool

if TYPE_CHECKING:  # the delivery thread, which writes through this, holds its stats
    from producers.delivery import DeliveryStats


class SpoolWrites:
    def __init__(self, spool: Spool, stats: DeliveryStats) -> None:
        self._spool = spool
        self._stats = stats
        self._full = SparseLog(
            "events_dropped", reason="spool full", spool_max_bytes=spool.max_bytes
        )
        self._failing = SparseLog("spool_write_failed", ended_event="spool_write_recovered")

    def write(self, records: Sequence[SpoolRecord], *, front: bool = False) -> int:
        """Spool records (in front of what is there, or behind); returns how many were kept."""
        if not records:
            return 0
        try:
            kept = (self._spool.prepend if front else self._spool.append)(records)
        except OSError as exc:
            self._stats.dropped += len(records)
            self._failing.count(len(records), error=str(exc), directory=str(self._spool.directory))
            return 0
        self._failing.ended()
        self._stats.spooled += kept
        if dropped := len(records) - kept:
            self._stats.dropped += dropped
            self._full.count(dropped, dropped_total=self._stats.dropped)
        return kept

    @property
    def logs(self) -> tuple[SparseLog, ...]:
        return self._full, self._failing
