"""A spool belongs to one process at a time: processes given the same folder (the jobs of a
worker, say) each claim a numbered slot in it, locked while the process lives. The kernel
drops the lock however the process ends, so the next process to start takes the slot over with
whatever it holds.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


def free_slot(base: Path) -> tuple[Path, int]:
    """The first slot under ``base`` that no living process holds, and the descriptor of the
    lock that claims it."""
    base.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        slot = base / f"slot-{n}"
        slot.mkdir(exist_ok=True)
        lock = os.open(slot / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            n += 1
            continue
        except OSError:
            os.close(lock)
            raise
        return slot, lock


def unavailable(directory: Path, error: OSError) -> None:
    """Say that a spool folder cannot be used, and what the bot does without it."""
    log.error(
        "spool_unavailable",
        directory=str(directory),
        error=str(error),
        detail="events wait in memory only; what does not fit there is dropped and counted",
    )
