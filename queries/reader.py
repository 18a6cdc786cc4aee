"""The store as queries see it: a client, the generation each projection is shown at, and how
long a session may be silent before it is called abandoned (``abandoned_after``).

The pointer (``current_generation``) is read at most once per ``pointer_ttl_s``: a cut-over is
seen within that time, and until then readers keep the generation before it, which a
cut-over retires but does not drop. The process that runs a cut-over calls ``forget`` so that
its own readers follow at once. What else may be that old is held as long (``held``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from clickhouse_connect.driver.binding import must_escape
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.query import QueryResult

from queries.completeness import Clock
from queries.errors import NotFoundError

T = TypeVar("T")

ABANDONED_AFTER = timedelta(minutes=10)
"""The default of ``TSTORE_ABANDONED_AFTER_S``."""


class Reader:
    """Statements over one or more connections to the same store, each on the next idle one:
    a connection runs one statement at a time, so a service answering concurrent callers, or
    a keeper of the caches folding on several, gives it several."""

    def __init__(
        self,
        client: Client,
        *more: Client,
        pointer_ttl_s: float = 1.0,
        abandoned_after: timedelta = ABANDONED_AFTER,
        pinned: Mapping[str, int] | None = None,
    ) -> None:
        """``pinned``: the generation of each projection to read, instead of the one readers
        are shown (a rebuild fills the caches of its generation before it shows it)."""
        self.abandoned_after = abandoned_after
        """A session with no end and no event for longer than this is called abandoned."""
        self._idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for each in (client, *more):
            self._idle.put(each)
        self._connections = 1 + len(more)
        self._ttl_s = pointer_ttl_s
        self._lock = threading.Lock()
        self._pointer: dict[str, int] = {}
        self._read_at = float("-inf")
        self._held: dict[Hashable, tuple[float, Any]] = {}
        self._pinned = pinned

    def generation(self, projection: str) -> int:
        """The generation readers are shown for ``projection`` (or the one pinned)."""
        if self._pinned is not None:
            return self._pinned[projection]
        with self._lock:
            if time.monotonic() - self._read_at > self._ttl_s:
                rows = self.rows("SELECT view, generation FROM current_generation FINAL")
                self._pointer = {str(v): int(g) for v, g in rows}
                self._read_at = time.monotonic()
            pointer = self._pointer
        if projection not in pointer:
            raise NotFoundError("the store has no generation yet: is it migrated and projecting?")
        return pointer[projection]

    def clock(self) -> Clock:
        """Now, for the questions that depend on when they are asked."""
        return Clock(datetime.now(UTC), self.abandoned_after)

    def forget(self) -> None:
        """Read the pointer again on the next query (after a cut-over in this process)."""
        with self._lock:
            self._read_at = float("-inf")
            self._held.clear()

    def held(self, key: Hashable, read: Callable[[], T]) -> T:
        """What ``read`` answers, read again at most once per ``pointer_ttl_s``: for what a
        reader may take up to that old and still answer the same."""
        now = time.monotonic()
        with self._lock:
            kept = self._held.get(key)
        if kept is not None and now - kept[0] <= self._ttl_s:
            return kept[1]  # type: ignore[no-any-return]
        value = read()
        with self._lock:
            self._held[key] = (now, value)
        return value

    @property
    def connections(self) -> int:
        """How many statements may run at once."""
        return self._connections

    def rows(self, sql: str, **parameters: Any) -> Sequence[Sequence[Any]]:
        bound = bindable(parameters)
        result: QueryResult = self._on_idle(lambda client: client.query(sql, parameters=bound))
        return result.result_rows

    def command(self, sql: str, **parameters: Any) -> None:
        """Run a statement that answers nothing (the caches' ``INSERT ... SELECT``)."""
        bound = bindable(parameters)
        self._on_idle(lambda client: client.command(sql, parameters=bound))

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        self._on_idle(lambda client: client.insert(table, rows, column_names=columns))

    def _on_idle(self, use: Callable[[Client], T]) -> T:
        client = self._idle.get()
        try:
            return use(client)
        finally:
            self._idle.put(client)


class ArrayParameter:
    """A list of strings or of integers bound as an array parameter, in the text clickhouse-
    connect would send for the list itself (a test holds the two the same). clickhouse-connect
    escapes strings a character at a time in Python: 3.8 ms of a held GIL for 3 600 session
    ids, in every statement naming them; this takes 0.04 ms. It relies on clickhouse-connect
    sending ``str()`` of a value of a type it does not know."""

    __slots__ = ("_text",)

    def __init__(self, items: Sequence[str | int]) -> None:
        texts = [str(i) for i in items]
        if not items or not isinstance(items[0], str):
            self._text = "[" + ", ".join(texts) + "]"
            return
        if any(c in "".join(texts) for c in must_escape):
            texts = [i.translate(_ESCAPED) for i in texts]
        self._text = "['" + "', '".join(texts) + "']"

    def __str__(self) -> str:
        return self._text


_ESCAPED = {ord(c): "\\" + c for c in must_escape}


def bindable(parameters: dict[str, Any]) -> dict[str, Any]:
    """``parameters`` with each list of strings, or of integers, made an ``ArrayParameter``."""
    return {name: _bindable(value) for name, value in parameters.items()}


def _bindable(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    kinds = {type(v) for v in value}
    return ArrayParameter(value) if kinds <= {str} or kinds <= {int} else value
