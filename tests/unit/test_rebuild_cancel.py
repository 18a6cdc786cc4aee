"""``RebuildService.cancel`` on its own, the replay played by a stand-in: a cancel takes
between two batches; asked once the replay is over, it answers at once that the rebuild runs
on (it waited through the verification, the catch-up and the warm-up, minutes at 1M
sessions, and the command asking timed out); and a start still planning is neither started
twice nor cancelled unseen. A process that stops stops its rebuild as a cancel does, within
a grace, or waits for one past its replay, and says how to go on."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiokafka import TopicPartition
from structlog.testing import capture_logs

import consumers.admin
from consumers.admin import RebuildService
from consumers.rebuild import Cancellation, RebuildCancelledError
from consumers.storage.clickhouse import Store
from consumers.storage.generations import GenerationError
from schemas import Topics


class _Plan:
    generation = 2

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation}


class Stages:
    """When the stand-in may go on: plans wait for ``planned``; the replay goes on from its
    first batch only once ``replaying`` is set or a cancel is asked; a verification waits for
    ``verdict``, and then fails. ``replayed``: its replay is over."""

    def __init__(self) -> None:
        self.planned = asyncio.Event()
        self.replaying = asyncio.Event()
        self.replayed = asyncio.Event()
        self.verdict = asyncio.Event()
        self.batched = asyncio.Event()
        self.ended = asyncio.Event()

    async def plan_rebuild(self, **_: Any) -> _Plan:
        await self.planned.wait()
        return _Plan()

    async def rebuild(self, _: _Plan, *, cancel: Cancellation, progress: Any, **__: Any) -> None:
        """Three batches, then the verification."""
        for n in range(3):
            if cancel.asked.is_set():
                raise RebuildCancelledError(2)
            progress({TopicPartition("t", 0): n + 1})
            self.batched.set()
            asked = asyncio.ensure_future(cancel.asked.wait())
            await asyncio.wait(
                {asked, asyncio.ensure_future(self.replaying.wait())},
                return_when=asyncio.FIRST_COMPLETED,
            )
        cancel.replayed.set()
        self.replayed.set()
        await self.verdict.wait()
        self.ended.set()
        raise RuntimeError("the generation does not match the topics")


@pytest.fixture
def stages(monkeypatch: pytest.MonkeyPatch) -> Stages:
    stages = Stages()
    monkeypatch.setattr(consumers.admin, "plan_rebuild", stages.plan_rebuild)
    monkeypatch.setattr(consumers.admin, "rebuild", stages.rebuild)
    return stages


def _service() -> RebuildService:
    return RebuildService(
        bootstrap="127.0.0.1:1", topics=Topics(), store=cast(Store, None), base_group="g"
    )


async def _started(stages: Stages) -> RebuildService:
    service = _service()
    stages.planned.set()
    await service.start({})
    await stages.batched.wait()
    return service


async def test_a_cancel_during_the_replay_takes_between_two_batches(stages: Stages) -> None:
    service = await _started(stages)
    ended = await service.cancel()
    assert (ended["state"], ended["positions"]) == ("cancelled", [["t", 0, 1]])
    with pytest.raises(GenerationError, match="no rebuild is running in this process"):
        await service.cancel()


async def test_a_cancel_after_the_replay_answers_at_once_that_the_rebuild_runs_on(
    stages: Stages,
) -> None:
    service = await _started(stages)
    stages.replaying.set()
    await stages.replayed.wait()
    ended = await asyncio.wait_for(service.cancel(), 1)
    assert ended["state"] == "running"
    stages.verdict.set()
    await asyncio.sleep(0.01)
    assert service.status()["error"] == "the generation does not match the topics"


async def test_a_start_still_planning_is_not_started_again_nor_cancelled_unseen(
    stages: Stages,
) -> None:
    service = _service()
    starting = asyncio.create_task(service.start({}))
    await asyncio.sleep(0.01)
    with pytest.raises(GenerationError, match="being planned"):
        await service.start({})
    with pytest.raises(GenerationError, match="being planned"):
        await service.cancel()
    stages.planned.set()
    assert (await starting)["plan"] == {"generation": 2}
    assert (await service.cancel())["state"] == "cancelled"


async def test_a_process_stopping_stops_its_rebuild_between_two_batches_and_says_so(
    stages: Stages,
) -> None:
    service = await _started(stages)
    with capture_logs() as logged:
        await service.stop(grace_s=5)
    assert service.status()["state"] == "cancelled"
    said = [e for e in logged if e["event"] == "rebuild_stopped"]
    assert [e["generation"] for e in said] == [2], logged
    assert "tstore rebuild --resume" in said[0]["detail"]
    with pytest.raises(GenerationError, match="is stopping"):
        await service.start({})


async def test_a_rebuild_past_its_replay_is_waited_for_to_its_end(stages: Stages) -> None:
    """Its verification and cut-over run in threads a cancel would not stop: the cut-over
    would be made, and told as not made."""
    service = await _started(stages)
    stages.replaying.set()
    await stages.replayed.wait()
    with capture_logs() as logged:
        stopping = asyncio.create_task(service.stop(grace_s=0.1))
        await asyncio.sleep(0.3)
        assert not stopping.done()
        assert [e["event"] for e in logged] == ["rebuild_finishing"]
        stages.verdict.set()
        await asyncio.wait_for(stopping, 1)
    assert service.status()["error"] == "the generation does not match the topics"
    assert [(e["event"], e.get("state")) for e in logged][1:] == [("rebuild_stopped", "failed")]


async def test_stopping_a_process_with_no_rebuild_running_says_nothing(stages: Stages) -> None:
    with capture_logs() as logged:
        await _service().stop(grace_s=0.1)
        service = await _started(stages)
        stages.replaying.set()
        stages.verdict.set()
        await stages.ended.wait()
        await service.stop(grace_s=0.1)
    assert logged == []
