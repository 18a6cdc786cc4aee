"""``/v1/incomplete`` at scale, in process: on ``bench.query``'s kept store of N sessions (loaded
by it when missing), a walk of every page as a healthy store sees it, and a first page when
every session is incomplete.

The bench sessions never end and are days old, so with the default ``abandoned_after`` each one
is abandoned and a page fills at once. Walked with an ``abandoned_after`` longer than their age,
almost none is incomplete: each page searches until its time is spent (``queries.incomplete``),
which is what a store whose calls are whole costs to list.

JSON keys: ``sessions``, ``walk_seconds``, ``walk_pages``, ``walk_found``, ``page_p50_ms``,
``page_max_ms`` (the walk's pages), ``full_page_ms`` (a first page of 50 when all are
incomplete).
"""

from __future__ import annotations

import time
from datetime import timedelta

from bench.query import DATABASE, dsn_of, kept_store, note, p50, scratch_copy
from bench.report import run
from queries.incomplete import incomplete_sessions
from service.process import open_reader

PAGE = 50
PATIENT = timedelta(days=100_000)
"""Longer than any bench session's age: none of them counts as abandoned."""


def measure(sessions: int) -> dict[str, float]:
    folder = scratch_copy(kept_store(sessions)[0])
    reader = open_reader(dsn_of(folder), DATABASE)
    incomplete_sessions(reader, limit=PAGE)  # the first query after opening warms the caches
    began = time.perf_counter()
    incomplete_sessions(reader, limit=PAGE)
    full_page_ms = 1000 * (time.perf_counter() - began)
    reader.abandoned_after = PATIENT
    pages: list[float] = []
    found, cursor = 0, None
    while not pages or cursor is not None:
        began = time.perf_counter()
        page = incomplete_sessions(reader, cursor=cursor, limit=PAGE)
        pages.append(1000 * (time.perf_counter() - began))
        found, cursor = found + len(page.items), page.next_cursor
        note(f"page {len(pages)}: {pages[-1]:.0f} ms, {len(page.items)} sessions")
    return {
        "sessions": sessions,
        "walk_seconds": round(sum(pages) / 1000, 2),
        "walk_pages": len(pages),
        "walk_found": found,
        "page_p50_ms": p50(pages),
        "page_max_ms": round(max(pages), 1),
        "full_page_ms": round(full_page_ms, 1),
    }


if __name__ == "__main__":
    run(__doc__ or "", 1_000_000, measure, option="sessions")
