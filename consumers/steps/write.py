"""Writing a batch's rows: one insert per table, each with a deterministic deduplication token,
so that ClickHouse refuses a batch replayed after a crash with the same boundaries."""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

from consumers.metrics import ProjectorMetrics
from consumers.steps import Records
from consumers.storage.clickhouse import Store


def dedup_token(table: str, records: Records, generation: int) -> str:
    """The same partition ranges into the same table and generation always give the same token:
    table, then topic:partition:first-last of every partition in the batch, then generation."""
    ranges = ",".join(
        f"{tp.topic}:{tp.partition}:{batch[0].offset}-{batch[-1].offset}"
        for tp, batch in sorted(
            records.items(), key=lambda item: (item[0].topic, item[0].partition)
        )
        if batch
    )
    return f"{table}|{ranges}|g{generation}"


def write(
    store: Store,
    rows: dict[str, pl.DataFrame],
    records: Records,
    *,
    generation: int,
    projections: Collection[str],
    metrics: ProjectorMetrics,
) -> int:
    """Insert the rows of the chosen projections into a generation (blocking: run it off the
    event loop); returns rows written."""
    written = 0
    for table, table_rows in rows.items():
        if table not in projections:
            continue
        with metrics.insert_seconds.labels(table).time():
            store.insert(
                table,
                table_rows,
                generation=generation,
                dedup_token=dedup_token(table, records, generation),
            )
        written += table_rows.height
    return written
