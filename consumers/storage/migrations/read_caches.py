"""Migrations 51 on: the read side's caches (analytics' slices and rollups, the listing's
cards, their marks), the table that says which sessions were projected after a mark, and how
every table stores its small parts."""

from __future__ import annotations

from consumers.projections import PROJECTIONS
from consumers.storage.migrations.migration import Migration, each_projection
from consumers.storage.session_facts import (
    CACHE_TABLES,
    CARD_KEYS_TABLE,
    CARDS_TABLE,
    MARKS_TABLE,
    ROLLUP_TABLES,
    SLICES_TABLE,
)

FACTS_TABLE_51 = """
CREATE TABLE IF NOT EXISTS session_facts
(
    generation UInt32,
    events_generation UInt32,
    chunks_generation UInt32,
    hour DateTime('UTC'),
    bot_id LowCardinality(String),
    session_id String,
    computed_at DateTime64(6, 'UTC'),
    slices UInt16,
    turns Array(Tuple(bot_id LowCardinality(String), framework LowCardinality(String),
        role Enum8('user' = 1, 'assistant' = 2), started_at DateTime64(6, 'UTC'),
        stopped_at Nullable(DateTime64(6, 'UTC')), duration_ms Nullable(Int64),
        interrupted Bool, timed_out Bool, language LowCardinality(Nullable(String)),
        complete Bool, seq UInt64)),
    events Nullable(UInt64), last_seq Nullable(Int64),
        session_ends Array(Tuple(seq UInt64, events UInt64,
        tracks Array(Tuple(track Enum8('user' = 1, 'assistant' = 2, 'mixed' = 3),
        chunks UInt64, samples UInt64)), occurred_at DateTime64(6, 'UTC'))),
        chunk_holes Nullable(Bool), last_event_at Nullable(DateTime64(6, 'UTC'))
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY (generation, events_generation, chunks_generation)
ORDER BY (hour, bot_id, session_id)"""
"""The analytics' first cache, as migration 51 made it: dropped by 53 for ``SLICES_TABLE``."""


def newest_projected(projection: str) -> str:
    """The newest ``projected_at`` of each generation of ``projection`` (the maximum is
    idempotent: the backfill may overlap the view's first inserts)."""
    return (
        f"SELECT '{projection}' AS source, generation, max(projected_at) AS projected_at "
        f"FROM {projection}_generations GROUP BY generation"
    )


PACKED_BELOW_BYTES = 10 * 1024 * 1024
"""A part smaller than this is written as one file (``data.packed``) instead of one per
stream and index, a dozen or more. Under 5k events/s each batch writes some ten small parts
across the projections and their views, and merges rewrite them: on this machine's ext4
(without a journal) finding a free inode among those recently deleted took a quarter to a
third of all CPU samples (two ``perf`` runs), and the store's process used 0.95-1.03 cores
instead of 1.08-1.37 (timing scripts). Parts at least this big (which are also where parts
go ``Wide``) keep a file per stream, for reads of a few of their columns."""
WRITTEN_TABLES = (
    "schema_migrations",
    *(f"{projection}_generations" for projection in PROJECTIONS),
    "current_generation",
    "generations",
    "session_summaries_generations",
    "session_seals_generations",
    "transcripts_newest",
    "transcripts_newest_by_bot",
    "projected_sessions",
    *CACHE_TABLES,
)
"""Every table of the store up to migration 104 (migrations 88-104 are numbered by a table's
place here, so it stays as it is); later tables are made packed (``session_facts_whole_folds``,
migration 116)."""

PROJECTED_SESSIONS_KEPT_DAYS = 2
"""How long ``projected_sessions`` keeps a row: a cache mark older than this is no mark."""


def projected_sessions_of(projection: str) -> str:
    """The sessions of each generation of ``projection`` and when they were projected: one
    row per session and insert (its rows share the insert's ``projected_at``)."""
    return (
        f"SELECT '{projection}' AS source, generation, projected_at, session_id "
        f"FROM {projection}_generations GROUP BY generation, projected_at, session_id"
    )


READ_CACHES: tuple[Migration, ...] = (
    # The analytics' cache of sessions (``consumers.storage.session_facts``).
    Migration(51, "session_facts", FACTS_TABLE_51),
    Migration(52, "session_facts_marks", MARKS_TABLE),
    # Its slices carry each turn's latency and each session's figures, and hourly rollups
    # are kept from them: a week of all bots took 1.2 s folding 2.3M cached turns.
    Migration(53, "drop_session_facts", "DROP TABLE IF EXISTS session_facts"),
    Migration(54, "session_slices", SLICES_TABLE),
    Migration(55, "session_facts_marks_reset", "TRUNCATE TABLE session_facts_marks"),
    *(Migration(56 + n, table, sql) for n, (table, sql) in enumerate(ROLLUP_TABLES.items())),
    # What was projected after a mark (``queries.facts``) is asked by every analytics read
    # and every refresh of the cache: without an index, a scan of the column in all three
    # tables. Rows are written in the order they were projected, so each granule's minimum
    # and maximum skip nearly all of them.
    *each_projection(
        58,
        "projected_at_index",
        lambda projection: (
            f"ALTER TABLE {projection}_generations ADD INDEX IF NOT EXISTS projected_at_minmax "
            "projected_at TYPE minmax GRANULARITY 1"
        ),
    ),
    *each_projection(
        61,
        "projected_at_index_so_far",
        lambda projection: (
            f"ALTER TABLE {projection}_generations MATERIALIZE INDEX projected_at_minmax "
            "SETTINGS mutations_sync = 1"
        ),
    ),
    # Whether anything was projected after the cache's mark, asked by every analytics read:
    # one row per projection and generation, kept by every insert, instead of three indexes.
    Migration(
        64,
        "projected_newest",
        "CREATE TABLE IF NOT EXISTS projected_newest (source LowCardinality(String), "
        "generation UInt32, "
        "projected_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))) "
        "ENGINE = AggregatingMergeTree ORDER BY (source, generation)",
    ),
    *each_projection(
        65,
        "projected_newest_on_insert",
        lambda projection: (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {projection}_projected_newest_on_insert "
            f"TO projected_newest AS {newest_projected(projection)}"
        ),
    ),
    *each_projection(
        68,
        "projected_newest_so_far",
        lambda projection: f"INSERT INTO projected_newest {newest_projected(projection)}",
    ),
    # The listing's cache (``queries.cards``): a page summarized 51 sessions at each request.
    # The marks go, so that the next refresh folds every session, cards included.
    Migration(71, "session_cards", CARDS_TABLE),
    Migration(72, "session_card_keys", CARD_KEYS_TABLE),
    Migration(73, "session_facts_marks_for_cards", "TRUNCATE TABLE session_facts_marks"),
    # Which sessions were projected after the caches' mark, asked by every refresh and by
    # every read under ingest: the three tables are ordered by session, so their minmax
    # indexes on ``projected_at`` skipped little once merges mixed old rows with new.
    Migration(
        74,
        "projected_sessions",
        "CREATE TABLE IF NOT EXISTS projected_sessions (source LowCardinality(String), "
        "generation UInt32, projected_at DateTime64(3, 'UTC'), session_id String) "
        "ENGINE = MergeTree ORDER BY (source, generation, projected_at) "
        f"TTL toDateTime(projected_at) + INTERVAL {PROJECTED_SESSIONS_KEPT_DAYS} DAY",
    ),
    *each_projection(
        75,
        "projected_sessions_on_insert",
        lambda projection: (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {projection}_projected_sessions_on_insert "
            f"TO projected_sessions AS {projected_sessions_of(projection)}"
        ),
    ),
    *each_projection(
        78,
        "projected_sessions_so_far",
        lambda projection: (
            f"INSERT INTO projected_sessions {projected_sessions_of(projection)} "
            f"HAVING projected_at > now() - INTERVAL {PROJECTED_SESSIONS_KEPT_DAYS} DAY"
        ),
    ),
    *each_projection(
        81,
        "projected_at_index_dropped",
        lambda projection: (
            f"ALTER TABLE {projection}_generations DROP INDEX IF EXISTS projected_at_minmax"
        ),
    ),
    # ``projected_sessions`` answers whether anything was projected after a time, too: one
    # materialized view per insert and projection instead of two, for the projector's sake.
    *each_projection(
        84,
        "projected_newest_on_insert_dropped",
        lambda projection: f"DROP VIEW IF EXISTS {projection}_projected_newest_on_insert",
    ),
    Migration(87, "projected_newest_dropped", "DROP TABLE IF EXISTS projected_newest"),
    *(
        Migration(
            88 + n,
            f"{table}_small_parts_packed",
            f"ALTER TABLE {table} MODIFY SETTING min_bytes_for_full_part_storage = "
            f"{PACKED_BELOW_BYTES}",
        )
        for n, table in enumerate(WRITTEN_TABLES)
    ),
)
