"""The read model's DDL, as numbered migrations applied once each and recorded in the database.

Projections are generational. Each projection's rows live in one physical table,
``<projection>_generations``, partitioned and keyed by ``generation`` first, so a rebuild
writes a new generation beside the live one and dropping a generation drops its partitions.
Readers query stable views named after the projections (``transcripts``, ``audio_chunks``,
``session_events``), each showing the generation that ``current_generation`` points at for it.
A cut-over is one insert into ``current_generation`` (one part, visible at once), so every
view switches together; renaming or exchanging several tables would not be atomic.

The physical tables are ReplacingMergeTree keyed by what a reader asks for after the
generation, and the views read them with ``FINAL``: a duplicate insert is seen once. Every
table keeps a window of recent insert deduplication tokens
(``non_replicated_deduplication_window``), so a batch retried after a crash is refused whole
instead of written twice.

``turn_durations`` and ``session_completeness`` are views over the views: an aggregate over
them can never count a duplicate, and a response latency does not depend on the order its two
turns arrived in (a materialized view would add up every inserted block).
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from consumers.storage.migrations.call_interruptions import CALL_INTERRUPTIONS
from consumers.storage.migrations.migration import Migration
from consumers.storage.migrations.projection_sql import SESSION_SUMMARY_SOURCES, SESSION_TURN
from consumers.storage.migrations.projection_tables import PROJECTION_TABLES
from consumers.storage.migrations.read_caches import (
    PACKED_BELOW_BYTES,
    PROJECTED_SESSIONS_KEPT_DAYS,
    READ_CACHES,
)
from consumers.storage.migrations.rollup_sketches import ROLLUP_SKETCHES
from consumers.storage.migrations.silent_sessions import SILENT_SESSIONS
from consumers.storage.migrations.store_identity import STORE_IDENTITY
from consumers.storage.migrations.text_index import TEXT_INDEX, TEXT_INDEX_WRITTEN_OUT
from consumers.storage.migrations.whole_folds import WHOLE_FOLDS
from consumers.storage.migrations.word_separators import WORD_SEPARATORS

__all__ = [
    "MIGRATIONS",
    "PACKED_BELOW_BYTES",
    "PROJECTED_SESSIONS_KEPT_DAYS",
    "SESSION_SUMMARY_SOURCES",
    "SESSION_TURN",
    "WORD_SEPARATORS",
    "Migration",
    "migrate",
]

MIGRATIONS: tuple[Migration, ...] = (
    *PROJECTION_TABLES,
    *READ_CACHES,
    *TEXT_INDEX,
    *SILENT_SESSIONS,
    *STORE_IDENTITY,
    *CALL_INTERRUPTIONS,
    *WHOLE_FOLDS,
    *TEXT_INDEX_WRITTEN_OUT,
    *ROLLUP_SKETCHES,
)


def migrate(client: Client) -> list[Migration]:
    """Apply the migrations this database has not seen; returns those applied now."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        client.command(migration.sql)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name]],
            column_names=["version", "name"],
        )
        applied.append(migration)
    return applied
