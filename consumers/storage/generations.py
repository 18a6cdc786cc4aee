"""Projection generations: which exist, in what state, and which one each view shows.

A generation is one complete projection of the topics into some projections' tables, written
under its own number by its own consumer group. ``generations`` records each one's life
(building, verifying, failed, live, retired, frozen, discarded); ``current_generation`` says,
per projection, which generation readers see. Both are versioned tables: a change is an
insert, and the newest row per key wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from clickhouse_connect.driver.client import Client

from consumers.projections import PROJECTIONS
from consumers.storage.migrations import SESSION_SUMMARY_SOURCES
from consumers.storage.sealing import SEALING_SOURCES
from consumers.storage.session_facts import GENERATION_CACHES

_SESSION_ROWS = {
    "session_summaries_generations": set(SESSION_SUMMARY_SOURCES),
    "session_seals_generations": set(SEALING_SOURCES),
}
"""The tables of per-session rows, and the projections whose inserts fill them: a generation
of those projections has rows there too."""

State = Literal["building", "verifying", "failed", "live", "retired", "frozen", "discarded"]
UNFINISHED: tuple[State, ...] = ("building", "verifying", "failed")
"""States of a rebuild that has not ended: it can be resumed or discarded."""

Targets = dict[tuple[str, int], int]
"""Per (topic, partition), the offset a rebuild replays up to (exclusive)."""

_COLUMNS = [
    "generation",
    "projections",
    "state",
    "until",
    "targets",
    "report",
    "created_at",
    "cut_over_at",
]


class GenerationError(RuntimeError):
    """A generation operation that would break the read model; the message says why."""


def chosen_projections(names: Iterable[str]) -> tuple[str, ...]:
    """The named projections in their canonical order; unknown names are refused."""
    wanted = set(names)
    unknown = wanted - set(PROJECTIONS)
    if unknown or not wanted:
        raise GenerationError(
            f"unknown projections {sorted(unknown)}; choose from {', '.join(PROJECTIONS)}"
        )
    return tuple(p for p in PROJECTIONS if p in wanted)


@dataclass(frozen=True)
class Generation:
    number: int
    projections: tuple[str, ...]
    state: State
    created_at: datetime
    until: datetime | None = None
    targets: Targets | None = None
    report: str = ""
    cut_over_at: datetime | None = None

    def values(self) -> list[object]:
        targets = (
            json.dumps({f"{t}:{p}": o for (t, p), o in sorted(self.targets.items())})
            if self.targets is not None
            else ""
        )
        return [
            self.number,
            list(self.projections),
            self.state,
            self.until,
            targets,
            self.report,
            self.created_at,
            self.cut_over_at,
        ]

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> Generation:
        number, projections, state, until, targets, report, created_at, cut_over_at = values
        if state not in get_args(State):
            raise GenerationError(f"generation {number} has an unknown state {state!r}")
        parsed: Targets | None = None
        if targets:
            raw: dict[str, int] = json.loads(targets)
            parsed = {(k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1])): o for k, o in raw.items()}
        return cls(
            number=int(number),
            projections=tuple(projections),
            state=state,
            created_at=as_utc(created_at),
            until=as_utc(until),
            targets=parsed,
            report=report,
            cut_over_at=as_utc(cut_over_at),
        )


def as_utc(value: Any) -> Any:
    """Datetimes may come back naive from a UTC column; anything else is returned as is."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class GenerationSize:
    rows: dict[str, int]
    """Rows stored per projection, duplicates not yet merged away included."""
    bytes_on_disk: int


class Generations:
    """The generation registry and the pointer readers follow, in the store's database."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def all(self) -> list[Generation]:
        result = self.client.query(
            f"SELECT {', '.join(_COLUMNS)} FROM generations FINAL ORDER BY generation"
        )
        return [Generation.from_values(v) for v in result.result_rows]

    def get(self, number: int) -> Generation:
        for generation in self.all():
            if generation.number == number:
                return generation
        raise GenerationError(f"there is no generation {number}")

    def save(self, generation: Generation) -> Generation:
        self.client.insert("generations", [generation.values()], column_names=_COLUMNS)
        return generation

    def current(self) -> dict[str, int]:
        """Per projection, the generation its view shows."""
        result = self.client.query(
            "SELECT view, generation FROM current_generation FINAL ORDER BY view"
        )
        return {str(view): int(number) for view, number in result.result_rows}

    def shown(self) -> dict[int, tuple[str, ...]]:
        """Per generation that some view shows, the projections it is shown for: what the
        live projectors keep writing."""
        by_generation: dict[int, tuple[str, ...]] = {}
        for projection, number in self.current().items():
            by_generation[number] = (*by_generation.get(number, ()), projection)
        return by_generation

    def ensure_first(self) -> None:
        """A fresh store starts at generation 1, live for every projection.

        Only this makes generation 1, and it is live as soon as it is made, so a generation 1
        still building is a start that died half way (recorded, not yet shown, or shown and not
        yet marked live): every start finishes it, or the store would have nothing to project.
        """
        first = next((g for g in self.all() if g.number == 1), None)
        if first is None:
            first = self.save(Generation(1, PROJECTIONS, "building", datetime.now(UTC)))
        if first.state == "building" and set(self.current().values()) <= {1}:
            self.cut_over(1)

    def create(
        self,
        number: int,
        projections: Iterable[str],
        *,
        until: datetime | None,
        targets: Targets,
    ) -> Generation:
        """Register generation ``number`` as building; refused if the number is taken; at
        the engine's time (``now``)."""
        if any(g.number == number for g in self.all()):
            raise GenerationError(f"generation {number} exists already")
        return self.save(
            Generation(
                number,
                chosen_projections(projections),
                "building",
                self.now(),
                until=until,
                targets=targets,
            )
        )

    def unfinished(self) -> Generation | None:
        """The rebuild that has not ended, if any: there is at most one at a time."""
        pending = [g for g in self.all() if g.state in UNFINISHED]
        return pending[-1] if pending else None

    def now(self) -> datetime:
        """The engine's clock: the one of the rows' ``projected_at``."""
        ((now,),) = self.client.query("SELECT now64(3, 'UTC')").result_rows
        moment: datetime = as_utc(now)
        return moment

    def cut_over(self, number: int) -> Generation:
        """Point every view of the generation's projections at it, in one insert.

        One insert is one part, which queries see entirely or not at all: every view switches
        at the same moment. Generations no longer shown by any view are retired.
        """
        generation = self.get(number)
        switched_at = datetime.now(UTC)
        self.client.insert(
            "current_generation",
            [[p, number, switched_at] for p in generation.projections],
            column_names=["view", "generation", "switched_at"],
        )
        live = replace(generation, state="live", cut_over_at=switched_at)
        self.save(live)
        shown = set(self.current().values())
        for other in self.all():
            if other.state == "live" and other.number not in shown:
                self.save(replace(other, state="retired"))
        return live

    def set_state(self, number: int, state: State, *, report: str | None = None) -> Generation:
        generation = self.get(number)
        changed = replace(
            generation, state=state, report=generation.report if report is None else report
        )
        return self.save(changed)

    def drop(self, number: int) -> Generation:
        """Delete a generation's rows; refused for a generation some view still shows, and
        for one already dropped, which would otherwise be reported dropped again."""
        generation = self.get(number)
        if generation.state == "discarded":
            raise GenerationError(
                f"generation {number} is discarded already: its rows were dropped"
            )
        shown_by = sorted(p for p, n in self.current().items() if n == number)
        if shown_by:
            raise GenerationError(
                f"generation {number} is what readers see for {', '.join(shown_by)}; "
                "rebuild and cut over to another generation before dropping it"
            )
        for table in (
            *(f"{p}_generations" for p in generation.projections),
            *(t for t, fed_by in _SESSION_ROWS.items() if fed_by & set(generation.projections)),
        ):
            self.client.command(f"ALTER TABLE {table} DROP PARTITION {int(number)}")
        for table in GENERATION_CACHES:
            self.client.command(
                f"ALTER TABLE {table} DELETE WHERE has([generation, events_generation, "
                f"chunks_generation], {int(number)}) SETTINGS mutations_sync = 1"
            )
        return self.set_state(number, "discarded")

    def prune(self, keep: int) -> list[int]:
        """Drop the retired generations beyond the newest ``keep``; returns those dropped.

        Retired generations are kept to compare with or to cut back to; frozen and unfinished
        ones are left to whoever made them.
        """
        retired = [g.number for g in self.all() if g.state == "retired"]
        doomed = retired[: max(len(retired) - keep, 0)]
        for number in doomed:
            self.drop(number)
        return doomed

    def overview(self) -> list[tuple[Generation, tuple[str, ...], GenerationSize]]:
        """Every generation, with the projections readers see it for, and its size."""
        shown = self.current()
        return [
            (
                generation,
                tuple(p for p, n in shown.items() if n == generation.number),
                self.size(generation.number),
            )
            for generation in self.all()
        ]

    def size(self, number: int) -> GenerationSize:
        result = self.client.query(
            "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts "
            "WHERE database = currentDatabase() AND active AND partition = {p:String} "
            "AND endsWith(table, '_generations') GROUP BY table",
            parameters={"p": str(number)},
        )
        rows = {str(t).removesuffix("_generations"): int(r) for t, r, _ in result.result_rows}
        return GenerationSize(rows, sum(int(b) for _, _, b in result.result_rows))
