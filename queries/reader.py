"""The store as queries see it: a client and the generation each projection is shown at.

The pointer (``current_generation``) is read at most once per ``pointer_ttl_s``: a cut-over is
seen within that time, and until then readers keep the generation before it, which a
cut-over retires but does not drop. The process that runs a cut-over calls ``forget`` so that
its own readers follow at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.errors import NotFoundError


class Reader:
    def __init__(self, client: Client, *, pointer_ttl_s: float = 1.0) -> None:
        self.client = client
        self._ttl_s = pointer_ttl_s
        self._lock = threading.Lock()
        self._pointer: dict[str, int] = {}
        self._read_at = float("-inf")

    def generation(self, projection: str) -> int:
        """The generation readers are shown for ``projection``."""
        with self._lock:
            if time.monotonic() - self._read_at > self._ttl_s:
                result = self.client.query("SELECT view, generation FROM current_generation FINAL")
                self._pointer = {str(v): int(g) for v, g in result.result_rows}
                self._read_at = time.monotonic()
            pointer = self._pointer
        if projection not in pointer:
            raise NotFoundError("the store has no generation yet: is it migrated and projecting?")
        return pointer[projection]

    def forget(self) -> None:
        """Read the pointer again on the next query (after a cut-over in this process)."""
        with self._lock:
            self._read_at = float("-inf")

    def rows(self, sql: str, **parameters: Any) -> Sequence[Sequence[Any]]:
        result = self.client.query(sql, parameters=parameters)
        return result.result_rows

    def named(self, sql: str, **parameters: Any) -> list[Mapping[str, Any]]:
        result = self.client.query(sql, parameters=parameters)
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]
