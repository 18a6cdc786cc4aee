"""Verifying a rebuilt generation before readers see it: what the replay projected, reduced
the way the tables reduce it, against what the generation holds, per table and per session;
and that it holds every row readers are shown that the topics held when it caught up."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
from aiokafka import AIOKafkaConsumer, TopicPartition

from consumers.gc_pause import cyclic_gc_paused
from consumers.projections import project
from consumers.steps import Records
from consumers.steps.bound import bound
from consumers.steps.decode import decode
from consumers.storage.clickhouse import TABLES, Store
from consumers.storage.generations import Generation
from producers.kafka import PLAINTEXT, KafkaSecurity
from schemas import EventCodec, Topics


class Tally:
    """What the replay projected, reduced the way the tables reduce it: per key the highest
    version, then per session the row count and the sum of the rows' digests.

    Each batch's digests are kept, and folded to one row per key whenever they pile up past
    the rows already folded, so memory follows the number of keys, not of events."""

    def __init__(self, projections: Iterable[str]) -> None:
        self._parts: dict[str, list[pl.DataFrame]] = {p: [] for p in projections}
        self._folded: dict[str, int] = dict.fromkeys(self._parts, 0)

    def add(self, rows: dict[str, pl.DataFrame]) -> None:
        for table, parts in self._parts.items():
            parts.append(TABLES[table].digests(rows[table]))
            if sum(p.height for p in parts) > 2 * self._folded[table] + 100_000:
                self._fold(table)

    def _fold(self, table: str) -> pl.DataFrame:
        spec = TABLES[table]
        folded = (
            pl.concat(self._parts[table])
            .sort(spec.version)
            .unique(subset=list(spec.key), keep="last")
        )
        self._parts[table] = [folded]
        self._folded[table] = folded.height
        return folded

    def sessions(self, table: str) -> dict[str, tuple[int, int]]:
        if not self._parts[table]:
            return {}
        per_session = (
            self._fold(table)
            .group_by("session_id")
            .agg(rows=pl.len(), digests=pl.col("digest").sum())
        )
        return {s: (int(n), int(d)) for s, n, d in per_session.iter_rows()}


@dataclass
class Verification:
    """Per table: rows the replay made and rows the generation holds, and the sessions whose
    rows or checksum differ (at most a few named)."""

    expected_rows: dict[str, int] = field(default_factory=dict)
    found_rows: dict[str, int] = field(default_factory=dict)
    mismatched_sessions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.expected_rows == self.found_rows and not any(self.mismatched_sessions.values())

    def to_json(self) -> str:
        return json.dumps(
            {
                "ok": self.ok,
                "expected_rows": self.expected_rows,
                "found_rows": self.found_rows,
                "mismatched_sessions": self.mismatched_sessions,
            },
            sort_keys=True,
        )


def verify(store: Store, generation: int, tally: Tally, projections: Iterable[str]) -> Verification:
    report = Verification()
    for table in projections:
        expected = tally.sessions(table)
        found = store.session_digests(table, generation)
        report.expected_rows[table] = sum(n for n, _ in expected.values())
        report.found_rows[table] = sum(n for n, _ in found.values())
        differing = sorted(
            s for s in expected.keys() | found.keys() if expected.get(s) != found.get(s)
        )
        report.mismatched_sessions[table] = differing[:10]
    return report


class VerificationError(RuntimeError):
    def __init__(self, generation: int, report: Verification) -> None:
        super().__init__(
            f"generation {generation} does not match the topics; readers stay where they are. "
            f"report: {report.to_json()}"
        )
        self.report = report


class SessionsLostError(RuntimeError):
    """The rebuilt generation lacks rows readers are shown, projected before its catch-up."""


def refuse_loss(store: Store, generation: Generation, before: datetime) -> None:
    """Raise ``SessionsLostError`` when cutting readers over to ``generation`` would take
    rows (turns, chunks, events) away from them.

    The replay and its verification only see the topics: when these no longer hold what was
    projected from them (a new broker behind the same names, topics made again, a retention
    limit, compaction), a rebuild verifies and cuts over to a store without those calls or
    parts of them. A row that a shown generation holds from before ``before`` (when the
    rebuild's catch-up began) was projected from an offset the rebuild has read, so the
    rebuilt generation must hold its key too (by a 64-bit hash: 2 to 3 s a projection at 1M
    sessions)."""
    shown = store.generations.current()
    lost = []
    for projection in generation.projections:
        if shown.get(projection, generation.number) == generation.number:
            continue
        key = f"cityHash64({', '.join(TABLES[projection].key)})"
        ((rows, sessions, named),) = store.client.query(
            "SELECT count(), uniqExact(session_id), groupUniqArray(5)(session_id) FROM ("
            f"SELECT DISTINCT session_id, {key} AS row FROM {projection}_generations "
            "WHERE generation = {shown:UInt32} AND projected_at < {before:DateTime64(6, 'UTC')} "
            f"AND row NOT IN (SELECT {key} FROM {projection}_generations "
            "WHERE generation = {rebuilt:UInt32}))",
            parameters={"shown": shown[projection], "rebuilt": generation.number, "before": before},
        ).result_rows
        if rows:
            more = ", ..." if sessions > len(named) else ""
            lost.append(
                f"{projection}: {rows} rows of {sessions} sessions "
                f"({', '.join(map(repr, sorted(named)))}{more})"
            )
    if lost:
        raise SessionsLostError(
            f"generation {generation.number} lacks what readers are shown and the topics held "
            f"when it caught up: {'; '.join(lost)}. The topics no longer hold those events "
            "(another broker, topics made again, a retention limit or compaction); readers "
            "stay where they are. Cut over anyway with `tstore rebuild --resume --allow-loss`, "
            "or drop it with `tstore rebuild --discard`"
        )


async def tally_topics(
    bootstrap: str,
    topics: Topics,
    codec: EventCodec,
    projections: Iterable[str],
    upto: dict[TopicPartition, int],
    security: KafkaSecurity = PLAINTEXT,
) -> Tally:
    """Re-read the topics up to ``upto`` and tally them: how a resumed rebuild, whose first
    run's tally died with it, learns what its generation must hold."""
    tally = Tally(projections)
    wanted = [tp for tp, end in upto.items() if end > 0]
    if not wanted:
        return tally  # topics made again, and empty: nothing to re-read
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **security.client_options(),
    )
    await consumer.start()
    try:
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        while any([await consumer.position(tp) < upto[tp] for tp in wanted]):
            fetched: Records = await consumer.getmany(timeout_ms=500, max_records=50_000)
            records = bound(fetched, upto)
            with cyclic_gc_paused():
                decoded = decode(records, codec, topics)
                tally.add(project(decoded.frames))
    finally:
        await consumer.stop()
    return tally
