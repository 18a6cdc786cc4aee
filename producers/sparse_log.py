"""Logging a trouble that repeats (events dropped, a disk that refuses writes) sparsely.

Trouble of that kind comes in floods: a full spool drops every event the bot sends, a full disk
fails every write the delivery thread tries, ten times a second. One line (or one traceback)
each buried the log and cost the thread time. A ``SparseLog`` says the first occurrence at
once, then at most one summary line per ``every_s`` with what was counted meanwhile, and, for
trouble that can end, one line when it does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

SUMMARY_EVERY_S = 5.0


class SparseLog:
    def __init__(
        self,
        event: str,
        *,
        level: str = "error",
        ended_event: str | None = None,
        every_s: float = SUMMARY_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        **fixed: Any,
    ) -> None:
        """``event`` names the lines; ``ended_event`` the one that says the trouble ended;
        ``fixed`` fields go on every line."""
        self._event, self._ended_event, self._fixed = event, ended_event, fixed
        self._level, self._every_s, self._clock = level, every_s, clock
        self._began: float | None = None
        """When the trouble began; None while there is none."""
        self._last_line = 0.0
        self._pending = 0
        """Counted since the last line."""
        self._total = 0
        """Counted since the trouble began."""
        self._latest: dict[str, Any] = {}
        self._ok_since: float | None = None
        """Set while things work again: the trouble is said ended once that lasted
        ``every_s`` (a nearly full disk takes small writes and refuses large ones, and its
        trouble would otherwise be said begun and ended with every write)."""

    @property
    def troubled(self) -> bool:
        return self._began is not None

    def count(self, n: int = 1, **context: Any) -> None:
        """``n`` more occurrences; ``context`` (the error, say) goes on the next line."""
        if n <= 0:
            return
        now = self._clock()
        self._total += n
        self._latest = context
        self._ok_since = None
        if self._began is None:
            self._began = self._last_line = now
            self._say(self._event, count=n, **context)
            return
        self._pending += n
        self.tick()

    def tick(self) -> None:
        """Say what was counted since the last line, if that was ``every_s`` ago or more, and
        that the trouble ended, if things have worked for ``every_s``."""
        now = self._clock()
        if self._ok_since is not None and now - self._ok_since >= self._every_s:
            self._end()
        elif self._ok_since is None and self._pending and now - self._last_line >= self._every_s:
            self._summarise()

    def flush(self) -> None:
        """Say what was counted since the last line now, and that the trouble ended if things
        work again (a close does, before it returns)."""
        if self._ok_since is not None:
            self._end()
        else:
            self._summarise()

    def _summarise(self) -> None:
        if self._pending and self._began is not None:
            self._last_line = self._clock()
            self._say(
                self._event,
                count=self._pending,
                total=self._total,
                for_s=round(self._last_line - self._began, 1),
                **self._latest,
            )
            self._pending = 0

    def ended(self) -> None:
        """Things work again (a write went through): the trouble is said ended, with its
        whole count, once they have worked for ``every_s`` (see ``tick``)."""
        if self._began is not None and self._ok_since is None:
            self._ok_since = self._clock()
            self.tick()

    def _end(self) -> None:
        assert self._began is not None
        if self._ended_event is None:
            self._summarise()
        else:
            self._say(
                self._ended_event,
                level="info",
                total=self._total,
                for_s=round(self._clock() - self._began, 1),
            )
        self._began, self._pending, self._total, self._ok_since = None, 0, 0, None

    def _say(self, event: str, level: str | None = None, **fields: Any) -> None:
        getattr(log, level or self._level)(event, **self._fixed, **fields)
