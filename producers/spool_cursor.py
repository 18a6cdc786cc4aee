"""A spool's cursor: how far each segment is delivered, kept in ``cursor.json`` beside the
segments and replaced whole (written aside, fsynced, renamed), so a crash leaves the old
cursor or the new one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

CURSOR = "cursor.json"


def load_cursor(directory: Path) -> dict[int, int]:
    """What was delivered; a cursor that cannot be read or made out is none (everything
    spooled is sent again, which consumers deduplicate), not a bot that cannot start."""
    path = directory / CURSOR
    try:
        if not path.exists():
            return {}
        found = json.loads(path.read_text())
        cursor = {int(seg): offset for seg, offset in found.items()}
        if not all(type(offset) is int and offset >= 0 for offset in cursor.values()):
            raise ValueError(f"offsets not whole numbers >= 0: {found!r}"[:200])
        return cursor
    except (OSError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        log.warning("spool_cursor_unreadable", file=str(path), error=str(exc)[:200])
        return {}


def save_cursor(directory: Path, committed: dict[int, int]) -> None:
    path = directory / CURSOR
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps({str(s): o for s, o in committed.items()}))
    with staged.open("rb") as handle:
        os.fsync(handle.fileno())
    staged.replace(path)
