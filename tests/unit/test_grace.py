"""Projectors told to stop get a grace period, then are cancelled: a SIGTERM always ends."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from service import process


async def test_projectors_that_do_not_end_in_their_grace_are_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process, "GRACE_S", 0.2)
    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck_in_a_commit() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    asyncio.get_running_loop().call_later(0.1, stop.set)
    with capture_logs() as logged:
        await asyncio.wait_for(process._within_grace(stuck_in_a_commit(), stop), 5)
    assert cancelled.is_set()
    assert [e["event"] for e in logged] == ["projectors_cancelled"]


async def test_a_failure_of_the_projectors_reaches_the_retry_loop() -> None:
    async def failing() -> None:
        raise ConnectionError("broker gone")

    with pytest.raises(ConnectionError, match="broker gone"):
        await process._within_grace(failing(), asyncio.Event())
