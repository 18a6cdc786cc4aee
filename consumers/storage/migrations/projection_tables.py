"""Migrations 1-50: the projection tables, the views readers query, the sessions' summaries
and seals, and the newest turn of each bot."""

from __future__ import annotations

from consumers.projections import PROJECTIONS
from consumers.storage.migrations.migration import Migration
from consumers.storage.migrations.projection_sql import (
    BY_BOT_AND_TIME,
    DEDUP_WINDOW,
    FIRST_BY_BOT_AND_TIME,
    NEWEST_OF_EACH_BOT,
    NEWEST_OF_EACH_GENERATION,
    SESSION_SUMMARY_SOURCES,
    SESSION_TURN_TYPE,
    SOURCE_COLUMNS,
    current_view,
    session_summary_views,
)
from consumers.storage.sealing import (
    LEDGER_COLUMNS,
    SEALING_SOURCES,
    SEALS_TABLE,
    SUMMARY_COLUMNS,
)

PROJECTION_TABLES: tuple[Migration, ...] = (
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
    version UInt64,{SOURCE_COLUMNS}
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
    seq UInt64,{SOURCE_COLUMNS}
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
    occurred_at DateTime64(6, 'UTC'),{SOURCE_COLUMNS}
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
    *(Migration(6 + n, name, current_view(name)) for n, name in enumerate(PROJECTIONS)),
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
    Migration(12, "transcripts_language_view", current_view("transcripts")),
    Migration(
        13,
        "transcripts_framework",
        "ALTER TABLE transcripts_generations "
        "ADD COLUMN IF NOT EXISTS framework LowCardinality(String) DEFAULT '' AFTER bot_id",
    ),
    Migration(14, "transcripts_framework_view", current_view("transcripts")),
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
        f"(SELECT {', '.join(FIRST_BY_BOT_AND_TIME)} ORDER BY bot_id, started_at)",
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
        f"TO transcripts_newest AS {NEWEST_OF_EACH_GENERATION}",
    ),
    Migration(
        25,
        "transcripts_newest_so_far",
        f"INSERT INTO transcripts_newest {NEWEST_OF_EACH_GENERATION}",
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
    turns AggregateFunction(groupUniqArray, {SESSION_TURN_TYPE}),
    seqs AggregateFunction(uniqExact, UInt64),
    last_seq SimpleAggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY generation
ORDER BY (generation, session_id)
SETTINGS index_granularity_bytes = 8192, min_compress_block_size = 4096,
    max_compress_block_size = 65536""",
    ),
    *session_summary_views(28, SESSION_SUMMARY_SOURCES, "session_summaries"),
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
    Migration(34, "session_events_declared_view", current_view("session_events")),
    Migration(
        35,
        "session_summaries_sealing",
        f"ALTER TABLE session_summaries_generations {SUMMARY_COLUMNS}",
    ),
    *session_summary_views(36, SEALING_SOURCES, "session_summaries_sealing"),
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
    *session_summary_views(44, SEALING_SOURCES, "session_seals", "session_seals_generations"),
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
        f"TO transcripts_newest_by_bot AS {NEWEST_OF_EACH_BOT}",
    ),
    Migration(
        50,
        "transcripts_newest_by_bot_so_far",
        f"INSERT INTO transcripts_newest_by_bot {NEWEST_OF_EACH_BOT}",
    ),
)
