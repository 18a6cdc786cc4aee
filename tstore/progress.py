"""The rebuild's progress on a terminal: a bar per partition with events/s and ETA (rich)."""

from __future__ import annotations

from types import TracebackType

from aiokafka import TopicPartition
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from consumers.rebuild import RebuildPlan


class RebuildProgress:
    """A bar per partition, advanced from the offsets the rebuild reports after each batch."""

    def __init__(self, plan: RebuildPlan) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9} ev/s"),
            TimeRemainingColumn(),
        )
        self._tasks: dict[TopicPartition, tuple[TaskID, int]] = {
            p.partition: (
                self._progress.add_task(
                    f"{p.partition.topic}[{p.partition.partition}]",
                    total=max(p.target - p.start, 0),
                    rate="-",
                ),
                p.start,
            )
            for p in plan.partitions
        }

    def __call__(self, positions: dict[TopicPartition, int]) -> None:
        for tp, position in positions.items():
            if tp not in self._tasks:
                continue
            task_id, start = self._tasks[tp]
            task = self._progress.tasks[task_id]
            done = min(max(position - start, 0), int(task.total or 0))
            self._progress.update(task_id, completed=done)
            speed = self._progress.tasks[task_id].speed
            self._progress.update(task_id, rate=f"{speed:,.0f}" if speed else "-")

    def __enter__(self) -> RebuildProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()
