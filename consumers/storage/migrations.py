"""The read model's DDL, as numbered migrations applied once each and recorded in the database.

Tables are ReplacingMergeTree keyed by what a reader asks for, so a duplicate insert collapses
at merge and reads with ``FINAL`` see each turn, chunk and event once. Every table keeps a
window of recent insert deduplication tokens (``non_replicated_deduplication_window``), so a
batch retried after a crash is refused whole instead of written twice.

``turn_durations`` and ``session_completeness`` are views over the deduplicated tables: an
aggregate over them can never count a duplicate, and a response latency does not depend on the
order its two turns arrived in (a materialized view would add up every inserted block).
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

DEDUP_WINDOW = "SETTINGS non_replicated_deduplication_window = 10000"

_SOURCE_COLUMNS = """
    source_topic LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64,
    projected_at DateTime64(3, 'UTC') DEFAULT now64(3)"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "transcripts",
        f"""
CREATE TABLE IF NOT EXISTS transcripts
(
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
ORDER BY (session_id, turn_id)
{DEDUP_WINDOW}""",
    ),
    Migration(
        2,
        "audio_chunks",
        f"""
CREATE TABLE IF NOT EXISTS audio_chunks
(
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
ORDER BY (session_id, track, chunk_seq)
{DEDUP_WINDOW}""",
    ),
    Migration(
        3,
        "session_events",
        f"""
CREATE TABLE IF NOT EXISTS session_events
(
    session_id String,
    seq UInt64,
    event_id UUID,
    event_type LowCardinality(String),
    bot_id LowCardinality(String),
    occurred_at DateTime64(6, 'UTC'),{_SOURCE_COLUMNS}
)
ENGINE = ReplacingMergeTree
ORDER BY (session_id, seq)
{DEDUP_WINDOW}""",
    ),
    Migration(
        4,
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
    FROM transcripts FINAL
    WHERE complete
)""",
    ),
    Migration(
        5,
        "session_completeness",
        """
CREATE VIEW IF NOT EXISTS session_completeness AS
SELECT
    session_id,
    count() AS events,
    max(seq) + 1 AS expected,
    expected - events AS missing
FROM session_events FINAL
GROUP BY session_id""",
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
