"""Rebuilds run inside the process that owns the store: start one, watch it; drop a
generation.

In embedded mode only one process may open the chDB path, so a rebuild cannot run beside
``tstore serve`` or ``tstore project`` as a process of its own; ``tstore rebuild`` asks the
store's HTTP service (``/v1/admin/rebuild``) instead, and the rebuild runs on that process's
event loop beside the live projectors, which hand over to the new generation after the
cut-over. Requests are dicts with ``only``, ``until``, ``resume``, ``discard``, ``dry_run``,
``allow_loss``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from consumers.projections import PROJECTIONS
from consumers.rebuild import (
    Cancellation,
    RebuildCancelledError,
    RebuildPlan,
    RebuildSummary,
    discard,
    plan_rebuild,
    rebuild,
)
from consumers.storage.clickhouse import Store
from consumers.storage.generations import Generation, GenerationError, Generations
from producers.kafka import PLAINTEXT, KafkaSecurity, connection_problem
from schemas import Topics

log = structlog.get_logger(__name__)


class KafkaUnreachableError(ConnectionError):
    """Kafka did not answer at the bootstrap address, so no rebuild can start: the store is
    fine and a later try may work (503), unlike a request it refuses (409)."""


class UnknownGenerationError(GenerationError, LookupError):
    """A generation the registry does not hold: not there (404), rather than refused (409)."""


DISCARD_EXCLUDES = ("resume", "dry_run", "allow_loss", "until", "only")
"""A discard drops the unfinished rebuild and plans, replays and cuts over nothing: it takes
none of a rebuild's options. Asked with one (``dry_run`` above all, which promises that nothing
changes), it is refused rather than run."""


def excluded_by_discard(request: dict[str, Any]) -> list[str]:
    """The options ``request`` sets beside ``discard`` that it excludes (``DISCARD_EXCLUDES``)."""
    return [name for name in DISCARD_EXCLUDES if request.get("discard") and request.get(name)]


def drop_known(generations: Generations, number: int) -> Generation:
    """``Generations.drop``, with an unknown generation told apart from one it refuses."""
    if number not in {g.number for g in generations.all()}:
        raise UnknownGenerationError(f"there is no generation {number}")
    return generations.drop(number)


STOPPING = "the store's process is stopping: start the rebuild once it runs again"


class RebuildService:
    """At most one rebuild at a time, run as a task of this process's event loop."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topics: Topics,
        store: Store,
        base_group: str,
        on_done: Callable[[], None] | None = None,
        security: KafkaSecurity = PLAINTEXT,
        **options: Any,
    ) -> None:
        """``on_done`` is called when a rebuild ends, however it ends: readers of this
        process that cache which generation is shown look again."""
        self._on_done = on_done
        self._bootstrap = bootstrap
        self._topics = topics
        self._store = store
        self._base_group = base_group
        self._security = security
        self._options = options
        self._task: asyncio.Task[RebuildSummary] | None = None
        self._plan: RebuildPlan | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._cancel = Cancellation()
        self._stopping = False
        """Set once the process stops: no rebuild may start then."""
        self._starting = False
        """While a start plans (Kafka round trips): a second start, or a cancel, would not
        see the rebuild it is about to run."""

    async def start(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._stopping:
            raise GenerationError(STOPPING)
        if self._starting:
            raise GenerationError("a rebuild is being planned in this process")
        if self._task is not None and not self._task.done():
            raise GenerationError(
                f"generation {self._plan and self._plan.generation} is rebuilding"
            )
        self._starting = True
        try:
            return await self._start(request)
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            why = await connection_problem(self._bootstrap, self._security)
            why = why or str(exc) or type(exc).__name__
            raise KafkaUnreachableError(
                f"Kafka at {self._bootstrap} is unreachable: {why}"
            ) from exc
        finally:
            self._starting = False

    async def _start(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("discard"):
            dropped = await discard(self._store, self._bootstrap, self._base_group, self._security)
            return {"discarded": dropped.number}
        until = _parse_until(request.get("until"))
        plan = await plan_rebuild(
            bootstrap=self._bootstrap,
            topics=self._topics,
            store=self._store,
            base_group=self._base_group,
            projections=request.get("only") or PROJECTIONS,
            until=until,
            resume=bool(request.get("resume")),
            security=self._security,
        )
        if self._stopping:  # since this start began planning
            raise GenerationError(STOPPING)
        if not request.get("dry_run"):
            self._plan, self._positions, self._cancel = plan, {}, Cancellation()
            self._task = asyncio.create_task(
                rebuild(
                    plan,
                    bootstrap=self._bootstrap,
                    topics=self._topics,
                    store=self._store,
                    progress=self._positions.update,
                    security=self._security,
                    allow_loss=bool(request.get("allow_loss")),
                    cancel=self._cancel,
                    **self._options,
                )
            )
            if self._on_done is not None:
                done = self._on_done
                self._task.add_done_callback(lambda _: done())
        return {"plan": plan.to_dict()}

    async def cancel(self) -> dict[str, Any]:
        """Stop the running rebuild between two batches, those in hand written and committed,
        and say where it is: cancelled, its generation unfinished, to resume or discard; or,
        asked once its replay was over, still running (verifying, then cutting over) or
        ended (``rebuild``'s ``cancel``)."""
        if self._starting:
            raise GenerationError(
                "a rebuild is being planned in this process: cancel it once it runs"
            )
        task = self._task
        if task is None or task.done():
            raise GenerationError("no rebuild is running in this process")
        await self._ask_to_stop(task, None)
        return self.status()

    async def _ask_to_stop(
        self, task: asyncio.Task[RebuildSummary], within_s: float | None
    ) -> None:
        """Ask the replay to stop, and wait until the rebuild has ended or its replay is over
        (it then goes on: see ``Cancellation``), for at most ``within_s``."""
        self._cancel.asked.set()
        replayed = asyncio.ensure_future(self._cancel.replayed.wait())
        try:
            await asyncio.wait(
                {task, replayed}, timeout=within_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            replayed.cancel()

    async def stop(self, grace_s: float) -> None:
        """The process stops: no rebuild starts any more, and a running one is asked to stop
        as ``cancel`` asks it, between two batches, with ``grace_s`` to do so. A replay that
        does not stop by then (a commit waiting on a broker gone) is cancelled: a resume
        replays what it had not committed, as after a kill. One past its replay is waited
        for: its verification and cut-over run in threads that a cancel would not stop, and
        a cut-over made after a cancel would be told as not made."""
        self._stopping = True
        task = self._task
        if task is None or task.done():
            return
        await self._ask_to_stop(task, grace_s)
        generation = self._plan and self._plan.generation
        if not task.done() and self._cancel.replayed.is_set():
            log.warning(
                "rebuild_finishing",
                generation=generation,
                detail="its replay is over: the process ends once it has verified and cut over",
            )
            await asyncio.wait({task})
        elif not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=grace_s)
        ended = self.status()
        if ended["state"] in ("cancelled", "failed"):
            log.warning(
                "rebuild_stopped",
                generation=generation,
                state=ended["state"],
                error=ended["error"],
                detail="`tstore rebuild --resume` goes on from where it stopped, "
                "`tstore rebuild --discard` drops it",
            )

    def status(self) -> dict[str, Any]:
        if self._task is None or self._plan is None:
            return {"state": "idle"}
        out: dict[str, Any] = {
            "plan": self._plan.to_dict(),
            "positions": [[tp.topic, tp.partition, o] for tp, o in self._positions.items()],
        }
        if not self._task.done():
            return out | {"state": "running"}
        if self._task.cancelled():  # the process is stopping
            return out | {
                "state": "failed",
                "error": "the store's process stopped the rebuild: resume it or discard it",
            }
        error = self._task.exception()
        if isinstance(error, RebuildCancelledError):
            return out | {"state": "cancelled", "error": str(error)}
        if error is not None:
            return out | {"state": "failed", "error": str(error)}
        summary = self._task.result()
        return out | {
            "state": "done",
            "summary": {
                "generation": summary.generation.number,
                "generation_state": summary.generation.state,
                "events": summary.events,
                "seconds": summary.seconds,
                "rows": summary.verification.found_rows,
            },
        }


KAFKA_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Record timestamps count from here; a replay cannot stop before it."""


def _parse_until(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        until = datetime.fromisoformat(str(value))
    except ValueError:
        raise GenerationError(f"until: not an ISO 8601 time: {value!r}") from None
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    if until <= KAFKA_EPOCH:
        raise GenerationError(f"until: {until.isoformat()} is before any Kafka record (1970)")
    return until
