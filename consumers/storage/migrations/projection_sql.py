"""What the migrations of the projection tables (``projection_tables``) are built of: their
settings, columns, views, projection and the sessions' summaries."""

from __future__ import annotations

from collections.abc import Iterator

from consumers.storage.migrations.migration import Migration
from consumers.storage.session_facts import FACT_TURN

DEDUP_WINDOW = (
    "SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024, "
    "min_compress_block_size = 4096, max_compress_block_size = 65536"
)
"""Every projection table keeps a window of insert tokens, and reads fine-grained: a session's
rows are a few among millions, and the sessions a page lists are scattered over the table, so
a read decompresses one small block per column and session instead of a 64 KiB one (half the
time of a page of summaries at 1M turns)."""

SOURCE_COLUMNS = """
    source_topic LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64,
    projected_at DateTime64(3, 'UTC') DEFAULT now64(3)"""


def current_view(projection: str) -> str:
    """The stable name readers query: the projection's current generation, deduplicated."""
    return f"""
CREATE OR REPLACE VIEW {projection} AS
SELECT * EXCEPT generation
FROM {projection}_generations FINAL
WHERE generation = (SELECT generation FROM current_generation FINAL WHERE view = '{projection}')"""


FIRST_BY_BOT_AND_TIME = (
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
BY_BOT_AND_TIME = (*FIRST_BY_BOT_AND_TIME, "turn_key", "text")
"""What reads across sessions need of a turn, in the projection ordered by bot and time (no
words): the summaries and analytics of a bot's day read a narrow range of it, and a search of
the latest minutes reads every text of that range (``queries.search``), the few thousand of
them faster than the text index sorts the million matches of a common word. ``turn_key``, a
64-bit hash of the turn's session and id computed on insert, is what a day's figures fold
versions by: reading and hashing the two strings cost a quarter of that query."""


NEWEST_OF_EACH_GENERATION = (
    "SELECT generation, max(started_at) AS started_at FROM transcripts_generations "
    "GROUP BY generation"
)
"""Where a search of the latest minutes starts (``queries.search``), kept up to date by every
insert: no ordering of the table finds it without reading a whole column. A dropped
generation leaves its one row behind, never read."""

NEWEST_OF_EACH_BOT = (
    "SELECT generation, bot_id, max(started_at) AS started_at FROM transcripts_generations "
    "GROUP BY generation, bot_id"
)
"""The newest turn start of each bot and generation, kept by every insert (the maximum is
idempotent: the backfill may overlap the view's first inserts)."""


SESSION_TURN = (("turn_id", "String"), ("version", "UInt64"), *FACT_TURN)
"""A turn version as a session's summary needs it: the columns of ``transcripts_generations``
that the projection ordered by bot and time holds, but the text."""
SESSION_TURN_TYPE = f"Tuple({', '.join(f'{name} {kind}' for name, kind in SESSION_TURN)})"
SESSION_SUMMARY_SOURCES = {
    "transcripts": {
        "turns": "groupUniqArrayState(CAST(({}) AS {}))".format(
            ", ".join(name for name, _ in SESSION_TURN), SESSION_TURN_TYPE
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


def session_summary_source(
    projection: str, sources: dict[str, dict[str, str]] = SESSION_SUMMARY_SOURCES
) -> str:
    adds = ", ".join(f"{sql} AS {column}" for column, sql in sources[projection].items())
    return (
        f"SELECT generation, session_id, {adds} "
        f"FROM {projection}_generations GROUP BY generation, session_id"
    )


def session_summary_views(
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
            f"TO {table} AS {session_summary_source(projection, sources)}",
        )
        yield Migration(
            first + 2 * n + 1,
            f"{prefix}_of_past_{projection}",
            f"INSERT INTO {table} (generation, session_id, "
            f"{', '.join(sources[projection])}) " + session_summary_source(projection, sources),
        )
