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

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from consumers.projections import PROJECTIONS
from consumers.storage.sealing import (
    LEDGER_COLUMNS,
    SEALING_SOURCES,
    SEALS_TABLE,
    SUMMARY_COLUMNS,
)
from consumers.storage.session_facts import (
    CACHE_TABLES,
    CARD_KEYS_TABLE,
    CARDS_TABLE,
    FACT_TURN,
    MARKS_TABLE,
    ROLLUP_TABLES,
    SLICES_TABLE,
)

DEDUP_WINDOW = (
    "SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024, "
    "min_compress_block_size = 4096, max_compress_block_size = 65536"
)
"""Every projection table keeps a window of insert tokens, and reads fine-grained: a session's
rows are a few among millions, and the sessions a page lists are scattered over the table, so
a read decompresses one small block per column and session instead of a 64 KiB one (half the
time of a page of summaries at 1M turns)."""

_SOURCE_COLUMNS = """
    source_topic LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64,
    projected_at DateTime64(3, 'UTC') DEFAULT now64(3)"""


def _current_view(projection: str) -> str:
    """The stable name readers query: the projection's current generation, deduplicated."""
    return f"""
CREATE OR REPLACE VIEW {projection} AS
SELECT * EXCEPT generation
FROM {projection}_generations FINAL
WHERE generation = (SELECT generation FROM current_generation FINAL WHERE view = '{projection}')"""


_FIRST_BY_BOT_AND_TIME = (
    "generation",
    "session_id",
    "turn_id",
    "bot_id",
    "framework",
    "role",
    "started_at",
    "stopped_at",
    "duration_ms",
    "interrupted",
    "timed_out",
    "language",
    "complete",
    "seq",
    "version",
)
"""The projection migration 16 made: what summaries and analytics need of a turn."""
BY_BOT_AND_TIME = (*_FIRST_BY_BOT_AND_TIME, "turn_key", "text")
"""What reads across sessions need of a turn, in the projection ordered by bot and time (no
words): the summaries and analytics of a bot's day read a narrow range of it, and a search of
the latest minutes reads every text of that range (``queries.search``), the few thousand of
them faster than the text index sorts the million matches of a common word. ``turn_key``, a
64-bit hash of the turn's session and id computed on insert, is what a day's figures fold
versions by: reading and hashing the two strings cost a quarter of that query."""


_NEWEST_OF_EACH_GENERATION = (
    "SELECT generation, max(started_at) AS started_at FROM transcripts_generations "
    "GROUP BY generation"
)
"""Where a search of the latest minutes starts (``queries.search``), kept up to date by every
insert: no ordering of the table finds it without reading a whole column. A dropped
generation leaves its one row behind, never read."""

_NEWEST_OF_EACH_BOT = (
    "SELECT generation, bot_id, max(started_at) AS started_at FROM transcripts_generations "
    "GROUP BY generation, bot_id"
)
"""The newest turn start of each bot and generation, kept by every insert (the maximum is
idempotent: the backfill may overlap the view's first inserts)."""


_FACTS_TABLE_51 = """
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


def _newest_projected(projection: str) -> str:
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
_WRITTEN_TABLES = (
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
"""Every table of the store."""

PROJECTED_SESSIONS_KEPT_DAYS = 2
"""How long ``projected_sessions`` keeps a row: a cache mark older than this is no mark."""


def _projected_sessions(projection: str) -> str:
    """The sessions of each generation of ``projection`` and when they were projected: one
    row per session and insert (its rows share the insert's ``projected_at``)."""
    return (
        f"SELECT '{projection}' AS source, generation, projected_at, session_id "
        f"FROM {projection}_generations GROUP BY generation, projected_at, session_id"
    )


SESSION_TURN = (("turn_id", "String"), ("version", "UInt64"), *FACT_TURN)
"""A turn version as a session's summary needs it: the columns of ``transcripts_generations``
that the projection ordered by bot and time holds, but the text."""
_SESSION_TURN_TYPE = f"Tuple({', '.join(f'{name} {kind}' for name, kind in SESSION_TURN)})"
SESSION_SUMMARY_SOURCES = {
    "transcripts": {
        "turns": "groupUniqArrayState(CAST(({}) AS {}))".format(
            ", ".join(name for name, _ in SESSION_TURN), _SESSION_TURN_TYPE
        )
    },
    "session_events": {"seqs": "uniqExactState(seq)", "last_seq": "max(seq)"},
}
"""What each projection adds to a session's row of ``session_summaries_generations``.

That table holds, per generation and session, the set of its distinct turn versions and the
set of its event seqs: what a summary is computed from (``queries.summary``), in one row
instead of a dozen turns and thirty ledger rows scattered over two tables. Sets, because a
replayed duplicate must change nothing: a sum or a count kept on insert would count it again.
Filled on insert by a materialized view per source, and dropped with the generation."""


def _session_summary_source(
    projection: str, sources: dict[str, dict[str, str]] = SESSION_SUMMARY_SOURCES
) -> str:
    adds = ", ".join(f"{sql} AS {column}" for column, sql in sources[projection].items())
    return (
        f"SELECT generation, session_id, {adds} "
        f"FROM {projection}_generations GROUP BY generation, session_id"
    )


def _session_summary_views(
    first: int,
    sources: dict[str, dict[str, str]],
    prefix: str,
    table: str = "session_summaries_generations",
) -> Iterator[Migration]:
    """Per source projection, the materialized view that adds its columns to the sessions'
    rows of ``table`` on insert, and the insert that adds them for the rows already stored."""
    for n, projection in enumerate(sources):
        yield Migration(
            first + 2 * n,
            f"{prefix}_from_{projection}",
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {prefix}_from_{projection} "
            f"TO {table} AS {_session_summary_source(projection, sources)}",
        )
        yield Migration(
            first + 2 * n + 1,
            f"{prefix}_of_past_{projection}",
            f"INSERT INTO {table} (generation, session_id, "
            f"{', '.join(sources[projection])}) " + _session_summary_source(projection, sources),
        )


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def _each_projection(first: int, name: str, sql: Callable[[str], str]) -> tuple[Migration, ...]:
    """One migration per projection, numbered from ``first``: ``sql`` of the projection."""
    return tuple(
        Migration(first + n, f"{projection}_{name}", sql(projection))
        for n, projection in enumerate(PROJECTIONS)
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "transcripts_generations",
        f"""
CREATE TABLE IF NOT EXISTS transcripts_generations
(
    generation UInt32,
    session_id String,
    turn_id String,
    bot_id LowCardinality(String),
    role Enum8('user' = 1, 'assistant' = 2),
    started_at DateTime64(6, 'UTC'),
    stopped_at Nullable(DateTime64(6, 'UTC')),
    duration_ms Nullable(Int64),
    text String,
    interrupted Bool,
    timed_out Bool,
    user_id Nullable(String),
    words Array(Tuple(text String, start Float64, end Float64)),
    complete Bool,
    seq UInt64,
    version UInt64,{_SOURCE_COLUMNS}
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY generation
ORDER BY (generation, session_id, turn_id)
{DEDUP_WINDOW}""",
    ),
    Migration(
        2,
        "audio_chunks_generations",
        f"""
CREATE TABLE IF NOT EXISTS audio_chunks_generations
(
    generation UInt32,
    session_id String,
    bot_id LowCardinality(String),
    track Enum8('user' = 1, 'assistant' = 2, 'mixed' = 3),
    chunk_seq UInt64,
    chunk_id String,
    uri String,
    format LowCardinality(String),
    sample_rate UInt32,
    channels UInt8,
    start_sample UInt64,
    end_sample UInt64,
    start_ms UInt64,
    end_ms UInt64,
    recording_started_at DateTime64(6, 'UTC'),
    starts_at DateTime64(6, 'UTC'),
    ends_at DateTime64(6, 'UTC'),
    byte_size UInt64,
    sha256 FixedString(64),
    seq UInt64,{_SOURCE_COLUMNS}
)
ENGINE = ReplacingMergeTree(seq)
PARTITION BY generation
ORDER BY (generation, session_id, track, chunk_seq)
{DEDUP_WINDOW}""",
    ),
    Migration(
        3,
        "session_events_generations",
        f"""
CREATE TABLE IF NOT EXISTS session_events_generations
(
    generation UInt32,
    session_id String,
    seq UInt64,
    event_id UUID,
    event_type LowCardinality(String),
    bot_id LowCardinality(String),
    occurred_at DateTime64(6, 'UTC'),{_SOURCE_COLUMNS}
)
ENGINE = ReplacingMergeTree
PARTITION BY generation
ORDER BY (generation, session_id, seq)
{DEDUP_WINDOW}""",
    ),
    Migration(
        4,
        "current_generation",
        """
CREATE TABLE IF NOT EXISTS current_generation
(
    view LowCardinality(String),
    generation UInt32,
    switched_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(switched_at)
ORDER BY view""",
    ),
    Migration(
        5,
        "generations",
        """
CREATE TABLE IF NOT EXISTS generations
(
    generation UInt32,
    projections Array(String),
    state LowCardinality(String),
    until Nullable(DateTime64(3, 'UTC')),
    targets String,
    report String,
    created_at DateTime64(3, 'UTC'),
    cut_over_at Nullable(DateTime64(3, 'UTC')),
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY generation""",
    ),
    *(Migration(6 + n, name, _current_view(name)) for n, name in enumerate(PROJECTIONS)),
    Migration(
        9,
        "turn_durations",
        """
CREATE VIEW IF NOT EXISTS turn_durations AS
SELECT
    session_id,
    turn_id,
    bot_id,
    role,
    started_at,
    stopped_at,
    duration_ms,
    interrupted,
    timed_out,
    if(role = 'assistant' AND previous_user_stop IS NOT NULL,
       dateDiff('millisecond', previous_user_stop, started_at), NULL) AS response_latency_ms
FROM
(
    SELECT
        *,
        max(if(role = 'user', stopped_at, NULL)) OVER (
            PARTITION BY session_id ORDER BY started_at, turn_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_user_stop
    FROM transcripts
    WHERE complete
)""",
    ),
    Migration(
        10,
        "session_completeness",
        """
CREATE VIEW IF NOT EXISTS session_completeness AS
SELECT
    session_id,
    count() AS events,
    max(seq) + 1 AS expected,
    expected - events AS missing
FROM session_events
GROUP BY session_id""",
    ),
    Migration(
        11,
        "transcripts_language",
        "ALTER TABLE transcripts_generations "
        "ADD COLUMN IF NOT EXISTS language LowCardinality(Nullable(String)) AFTER user_id",
    ),
    Migration(12, "transcripts_language_view", _current_view("transcripts")),
    Migration(
        13,
        "transcripts_framework",
        "ALTER TABLE transcripts_generations "
        "ADD COLUMN IF NOT EXISTS framework LowCardinality(String) DEFAULT '' AFTER bot_id",
    ),
    Migration(14, "transcripts_framework_view", _current_view("transcripts")),
    Migration(
        15,
        "transcripts_projection_merges",
        "ALTER TABLE transcripts_generations "
        "MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'",
    ),
    Migration(
        16,
        "transcripts_by_bot_and_time",
        f"ALTER TABLE transcripts_generations ADD PROJECTION IF NOT EXISTS by_bot_and_time "
        f"(SELECT {', '.join(_FIRST_BY_BOT_AND_TIME)} ORDER BY bot_id, started_at)",
    ),
    Migration(
        17,
        "transcripts_text_index",
        "ALTER TABLE transcripts_generations ADD INDEX IF NOT EXISTS words_of_text text "
        "TYPE text(tokenizer = splitByNonAlpha, preprocessor = lowerUTF8(text))",
    ),
    Migration(
        18,
        "transcripts_materialize_read_paths",
        "ALTER TABLE transcripts_generations MATERIALIZE PROJECTION by_bot_and_time, "
        "MATERIALIZE INDEX words_of_text",
    ),
    Migration(
        19,
        "transcripts_turn_key",
        "ALTER TABLE transcripts_generations ADD COLUMN IF NOT EXISTS turn_key UInt64 "
        "MATERIALIZED cityHash64(session_id, turn_id)",
    ),
    Migration(
        20,
        "transcripts_turns_by_bot_and_time",
        f"ALTER TABLE transcripts_generations ADD PROJECTION IF NOT EXISTS turns_by_bot_and_time "
        f"(SELECT {', '.join(BY_BOT_AND_TIME)} ORDER BY bot_id, started_at)",
    ),
    Migration(
        21,
        "transcripts_materialize_turns_by_bot_and_time",
        "ALTER TABLE transcripts_generations MATERIALIZE PROJECTION turns_by_bot_and_time",
    ),
    Migration(
        22,
        "transcripts_drop_by_bot_and_time",
        "ALTER TABLE transcripts_generations DROP PROJECTION IF EXISTS by_bot_and_time",
    ),
    Migration(
        23,
        "transcripts_newest",
        "CREATE TABLE IF NOT EXISTS transcripts_newest (generation UInt32, "
        "started_at SimpleAggregateFunction(max, DateTime64(6, 'UTC'))) "
        "ENGINE = AggregatingMergeTree ORDER BY generation",
    ),
    Migration(
        24,
        "transcripts_newest_on_insert",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS transcripts_newest_on_insert "
        f"TO transcripts_newest AS {_NEWEST_OF_EACH_GENERATION}",
    ),
    Migration(
        25,
        "transcripts_newest_so_far",
        f"INSERT INTO transcripts_newest {_NEWEST_OF_EACH_GENERATION}",
    ),
    # The text is written twice (the table, the projection) and merged again and again; LZ4
    # instead of the engine's ZSTD for large parts gave the projector back what the second
    # copy cost it (bench.projector: 121k events/s with ZSTD, 147k with LZ4, 141k before).
    Migration(
        26,
        "transcripts_text_lz4",
        "ALTER TABLE transcripts_generations MODIFY COLUMN text String CODEC(LZ4)",
    ),
    # A row is a session's whole history in sets, a few hundred bytes to some kilobytes, and
    # a page reads 50 of them scattered over the table: granules of about 8 KiB and small
    # compressed blocks keep each from decoding hundreds of others (a third off the read).
    Migration(
        27,
        "session_summaries_generations",
        f"""
CREATE TABLE IF NOT EXISTS session_summaries_generations
(
    generation UInt32,
    session_id String,
    turns AggregateFunction(groupUniqArray, {_SESSION_TURN_TYPE}),
    seqs AggregateFunction(uniqExact, UInt64),
    last_seq SimpleAggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY generation
ORDER BY (generation, session_id)
SETTINGS index_granularity_bytes = 8192, min_compress_block_size = 4096,
    max_compress_block_size = 65536""",
    ),
    *_session_summary_views(28, SESSION_SUMMARY_SOURCES, "session_summaries"),
    # The fixed-width columns a day's figures read, for 350k turns of all bots a query: LZ4
    # decodes them in a sixth less time than the engine's ZSTD, for a few more bytes.
    Migration(
        32,
        "transcripts_numbers_lz4",
        "ALTER TABLE transcripts_generations "
        + ", ".join(
            f"MODIFY COLUMN {column} CODEC(LZ4)"
            for column in (
                "started_at DateTime64(6, 'UTC')",
                "stopped_at Nullable(DateTime64(6, 'UTC'))",
                "duration_ms Nullable(Int64)",
                "turn_key UInt64 MATERIALIZED cityHash64(session_id, turn_id)",
                "version UInt64",
                "seq UInt64",
            )
        ),
    ),
    # Sealed sessions (``consumers.storage.sealing``): a SessionEnded's declaration in its
    # ledger row, and in the session's summary row its ends, newest event and chunk extents.
    Migration(
        33, "session_events_declared", f"ALTER TABLE session_events_generations {LEDGER_COLUMNS}"
    ),
    Migration(34, "session_events_declared_view", _current_view("session_events")),
    Migration(
        35,
        "session_summaries_sealing",
        f"ALTER TABLE session_summaries_generations {SUMMARY_COLUMNS}",
    ),
    *_session_summary_views(36, SEALING_SOURCES, "session_summaries_sealing"),
    # What 35-39 added to every summary row cost the projector a fifth of its throughput
    # (bench.projector, 1M events: 115k events/s against 140k): the rows that turns and
    # ledger write carried three more columns through every insert and merge. The sealing
    # sets move to a table of their own, written only by the events that fill them.
    Migration(40, "session_seals_generations", SEALS_TABLE),
    *(
        Migration(
            41 + n,
            f"drop_session_summaries_sealing_from_{source}",
            f"DROP VIEW IF EXISTS session_summaries_sealing_from_{source}",
        )
        for n, source in enumerate(SEALING_SOURCES)
    ),
    Migration(
        43,
        "session_summaries_unsealed",
        "ALTER TABLE session_summaries_generations "
        + ", ".join(f"DROP COLUMN IF EXISTS {c}" for s in SEALING_SOURCES.values() for c in s),
    ),
    *_session_summary_views(44, SEALING_SOURCES, "session_seals", "session_seals_generations"),
    # Per bot, its newest turn (``queries.freshness``): a dashboard tells a quiet bot from a
    # store that is behind. The maximum over the projection ordered by bot and time reads
    # every turn's start (100-120 ms at 10M turns); this table holds one row per bot.
    Migration(
        48,
        "transcripts_newest_by_bot",
        "CREATE TABLE IF NOT EXISTS transcripts_newest_by_bot (generation UInt32, "
        "bot_id LowCardinality(String), "
        "started_at SimpleAggregateFunction(max, DateTime64(6, 'UTC'))) "
        "ENGINE = AggregatingMergeTree ORDER BY (generation, bot_id)",
    ),
    Migration(
        49,
        "transcripts_newest_by_bot_on_insert",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS transcripts_newest_by_bot_on_insert "
        f"TO transcripts_newest_by_bot AS {_NEWEST_OF_EACH_BOT}",
    ),
    Migration(
        50,
        "transcripts_newest_by_bot_so_far",
        f"INSERT INTO transcripts_newest_by_bot {_NEWEST_OF_EACH_BOT}",
    ),
    # The analytics' cache of sessions (``consumers.storage.session_facts``).
    Migration(51, "session_facts", _FACTS_TABLE_51),
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
    *_each_projection(
        58,
        "projected_at_index",
        lambda projection: (
            f"ALTER TABLE {projection}_generations ADD INDEX IF NOT EXISTS projected_at_minmax "
            "projected_at TYPE minmax GRANULARITY 1"
        ),
    ),
    *_each_projection(
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
    *_each_projection(
        65,
        "projected_newest_on_insert",
        lambda projection: (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {projection}_projected_newest_on_insert "
            f"TO projected_newest AS {_newest_projected(projection)}"
        ),
    ),
    *_each_projection(
        68,
        "projected_newest_so_far",
        lambda projection: f"INSERT INTO projected_newest {_newest_projected(projection)}",
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
    *_each_projection(
        75,
        "projected_sessions_on_insert",
        lambda projection: (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {projection}_projected_sessions_on_insert "
            f"TO projected_sessions AS {_projected_sessions(projection)}"
        ),
    ),
    *_each_projection(
        78,
        "projected_sessions_so_far",
        lambda projection: (
            f"INSERT INTO projected_sessions {_projected_sessions(projection)} "
            f"HAVING projected_at > now() - INTERVAL {PROJECTED_SESSIONS_KEPT_DAYS} DAY"
        ),
    ),
    *_each_projection(
        81,
        "projected_at_index_dropped",
        lambda projection: (
            f"ALTER TABLE {projection}_generations DROP INDEX IF EXISTS projected_at_minmax"
        ),
    ),
    # ``projected_sessions`` answers whether anything was projected after a time, too: one
    # materialized view per insert and projection instead of two, for the projector's sake.
    *_each_projection(
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
        for n, table in enumerate(_WRITTEN_TABLES)
    ),
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
