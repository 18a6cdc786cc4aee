"""Migrations 120-130: the rollups' percentile states are sketches, and rollups of all bots
are kept beside those of each bot.

A week of every metric for all bots by the hour merged 160 rows an hour, each with a sample
of its values, and sorted each hour's sample to read its percentiles: about 70 ms a
distribution, two thirds of the read, and a sample drew lots once it held 8,192 values. A
sketch (``analytics.definitions.RELATIVE_ACCURACY``) adds up exactly and stays small, so an
hour of all bots is kept as one row per group (``session_facts.ALL_BOTS``). A state cannot
be converted to another function's, so the rollups are made again empty, and the marks go:
the next refresh folds every session again and fills them.
"""

from __future__ import annotations

from consumers.storage.migrations.migration import Migration
from consumers.storage.migrations.read_caches import PACKED_BELOW_BYTES
from consumers.storage.session_facts import ALL_BOTS_TABLES, ROLLUP_TABLES

_MADE = {**ROLLUP_TABLES, **ALL_BOTS_TABLES}

ROLLUP_SKETCHES: tuple[Migration, ...] = (
    *(
        Migration(120 + n, f"{table}_dropped_for_sketches", f"DROP TABLE IF EXISTS {table}")
        for n, table in enumerate(ROLLUP_TABLES)
    ),
    *(Migration(122 + n, table, sql) for n, (table, sql) in enumerate(_MADE.items())),
    *(
        Migration(
            126 + n,
            f"{table}_small_parts_packed",
            f"ALTER TABLE {table} MODIFY SETTING min_bytes_for_full_part_storage = "
            f"{PACKED_BELOW_BYTES}",
        )
        for n, table in enumerate(_MADE)
    ),
    Migration(130, "session_facts_marks_for_sketches", "TRUNCATE TABLE session_facts_marks"),
)
