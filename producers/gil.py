"""Cutting the delivery thread's long runs of work into slices the bot's thread can slip between.

Encoding and handing records to the Kafka client hold the GIL; the bot's event loop runs in
another thread of the same process, and must not wait for them.
"""

from __future__ import annotations

import asyncio
import time

_SLICE_S = 0.001
_PAUSE_S = 0.0001


async def breathe(since: float) -> float:
    """Sleep a moment once the delivery thread has worked ``_SLICE_S`` since ``since``.

    Encoding and handing records to the Kafka client hold the GIL. A timer of the bot's loop
    that falls due meanwhile waits for it, up to the interpreter's switch interval (5 ms).
    Yielding to this thread's event loop does not hand the GIL over (the thread takes it back
    before the waiting one wakes, and asyncio's sleeps round up to whole milliseconds); a short
    real sleep does. So long runs of work (a burst, a batch) are cut into slices the bot's loop
    can slip between. Returns the start of the next slice.
    """
    if time.perf_counter() - since < _SLICE_S:
        return since
    _hand_over_the_gil()
    await asyncio.sleep(0)
    return time.perf_counter()


def _hand_over_the_gil() -> None:
    """A real sleep in an async function, on purpose (see ``breathe``): only it lets the bot's
    thread take the GIL."""
    time.sleep(_PAUSE_S)
