"""A failed refresh of the caches is reported whole and does not end the service's loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import pytest
from structlog.testing import capture_logs

from queries.facts import FactsKeeper
from service import process


class _Failing:
    """Fails as a fold on two connections that both failed does (``FactsKeeper._fold``)."""

    def __init__(self, stop: asyncio.Event, loop: asyncio.AbstractEventLoop) -> None:
        self.refreshes = 0
        self._stop, self._loop = stop, loop

    def refresh(self, stopping: Callable[[], bool]) -> int:
        self.refreshes += 1
        if self.refreshes == 2:
            self._loop.call_soon_threadsafe(self._stop.set)
        error = RuntimeError("batch 0 failed")
        error.add_note("and beside it: RuntimeError('batch 1 failed')")
        raise error


async def test_each_failure_of_a_refresh_is_logged_and_the_next_refresh_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process, "FACTS_EVERY_S", 0.01)
    stop = asyncio.Event()
    keeper = _Failing(stop, asyncio.get_running_loop())
    with capture_logs() as logged:
        await asyncio.wait_for(process.keep_facts(cast(FactsKeeper, keeper), stop), 10)
    assert keeper.refreshes == 2
    assert [e["error"] for e in logged] == [
        "batch 0 failed; and beside it: RuntimeError('batch 1 failed')"
    ] * 2
