"""The tables of the analytics' cache of sessions (``queries.facts`` keeps and reads them).

A week of analytics folded from the live tables took seconds: every turn version read,
each session's turns and chunks gathered again. The cache holds each session's turns in
their latest versions and what its completeness needs, sliced by the hour its turns
started in, so a range reads its hours and nothing else; ``session_facts_marks`` says up to
when each set of generations has been cached, and readers take anything projected after
that from the live tables. A slice is the turns of one session that started in one hour, of
one bot (a session has one bot; should its turns name several, each bot's are a slice of
their own), so that a bot's day reads only that bot's slices.

A slice is replaced whole (``ReplacingMergeTree`` on its key): a session is always written
whole, and a slice left without turns is written empty. Each slice says how many its session
has: the sessions of one slice, nearly all, are read without gathering their slices. The
partition is the three generations the facts were folded from, so a rebuild's new generation
starts a cache of its own.
"""

from __future__ import annotations

from consumers.storage.sealing import END_TYPE

FACT_TURN = (
    ("bot_id", "LowCardinality(String)"),
    ("framework", "LowCardinality(String)"),
    ("role", "Enum8('user' = 1, 'assistant' = 2)"),
    ("started_at", "DateTime64(6, 'UTC')"),
    ("stopped_at", "Nullable(DateTime64(6, 'UTC'))"),
    ("duration_ms", "Nullable(Int64)"),
    ("interrupted", "Bool"),
    ("timed_out", "Bool"),
    ("language", "LowCardinality(Nullable(String))"),
    ("complete", "Bool"),
    ("seq", "UInt64"),
)
"""A turn of a slice: what the analytics read of a turn in its latest version."""
FACT_TURN_TYPE = f"Tuple({', '.join(f'{name} {kind}' for name, kind in FACT_TURN)})"
COMPLETENESS = (
    ("events", "Nullable(UInt64)"),
    ("last_seq", "Nullable(Int64)"),
    ("session_ends", f"Array({END_TYPE})"),
    ("chunk_holes", "Nullable(Bool)"),
    ("last_event_at", "Nullable(DateTime64(6, 'UTC'))"),
)
"""What a session's state needs beyond its turns: its ledger's distinct and last numbered
events, its ends, whether its chunks have holes, and its last event."""

FACTS_TABLE = f"""
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
    turns Array({FACT_TURN_TYPE}),
    {", ".join(f"{name} {kind}" for name, kind in COMPLETENESS)}
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY (generation, events_generation, chunks_generation)
ORDER BY (hour, bot_id, session_id)"""

MARKS_TABLE = """
CREATE TABLE IF NOT EXISTS session_facts_marks
(
    generation UInt32,
    events_generation UInt32,
    chunks_generation UInt32,
    through DateTime64(3, 'UTC'),
    marked_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(marked_at)
ORDER BY (generation, events_generation, chunks_generation)"""

CACHE_TABLES = ("session_facts", "session_facts_marks")
"""Where a dropped generation's cached facts are deleted too."""
