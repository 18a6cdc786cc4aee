"""Pausing Python's cycle collector while batches stream through a projector.

A batch makes hundreds of thousands of short-lived objects (records, bytes, frames) with no
reference cycles among them: reference counting frees them. While they are alive the cycle
collector walks them again and again, and the full collections their churn triggers cost a
projector about a tenth of its time. So while any loop holds the pause, automatic collection
is off, and the loop collects itself now and then (``collect_if_due``), so that real cycles
are still freed. Loops in several threads or tasks may hold it at once; the last one out puts
the collector back as it found it.

What was alive when the pause began (modules, classes, the service's app: over 100k objects)
is frozen out of those collections until it ends. A full collection walked all of it, about
50 ms on these cores, on the loop that also answers HTTP in ``tstore serve``: every reader
waited that long every ``COLLECT_EVERY_S``. Frozen objects that die in a cycle during the
pause are freed after it.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

COLLECT_EVERY_S = 10.0

_lock = threading.Lock()
_holders = 0
_was_enabled = True
_collected_at = time.monotonic()


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
            gc.collect()
            gc.freeze()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                gc.unfreeze()
                if _was_enabled:
                    gc.enable()


def collect_if_due(every_s: float = COLLECT_EVERY_S) -> None:
    """A full collection if the last was ``every_s`` ago or more."""
    global _collected_at
    if time.monotonic() - _collected_at >= every_s:
        gc.collect()
        _collected_at = time.monotonic()
