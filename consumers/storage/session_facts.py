"""The tables of the analytics' cache (``queries.facts`` keeps them, ``queries.metrics`` reads
them): sessions cut into slices, and hourly rollups of the slices.

A week of analytics folded from the live tables took seconds: every turn version read,
each session's turns and chunks gathered again. A slice holds the turns of one session that
started in one hour, of one bot (a session has one bot; should its turns name several, each
bot's are a slice of their own), in their latest versions, each with its response latency,
and the session's own figures (call time, overlap, silence, how it ended), which its first
slice counts. So a slice is read alone: the turn before it and the rest of its session were
already taken into account when it was folded. A session without turns (a call nobody spoke
in, often one that failed) has one slice without turns, in the hour of its first event,
which counts it.

Even so, a week of all bots read 2.3M cached turns (1.2 s), and the percentiles need each of
them. The rollups hold, per hour, bot and group, the slices' counts, sums and percentile
sketches, and the same summed over bots; a range reads its hours' rows and merges them. A
slice or rollup row is replaced whole (``ReplacingMergeTree`` on its key): a session is
always written whole, and a slice left without turns is written empty; a rollup row left
without turns is written deleted.
``session_facts_marks`` says up to when each set of generations has been cached, and readers
take anything projected after that from the live tables. The partition is the three
generations the facts were folded from, so a rebuild's new generation starts a cache of its
own.
"""

from __future__ import annotations

from analytics.definitions import LEVELS, RELATIVE_ACCURACY

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
"""What the analytics read of a turn in its latest version."""
SLICE_TURN = (*FACT_TURN, ("response_latency_ms", "Nullable(Int64)"))
SLICE_TURN_TYPE = f"Tuple({', '.join(f'{name} {kind}' for name, kind in SLICE_TURN)})"
SESSION_FIGURES = (
    ("opens", "Bool"),
    ("session_language", "LowCardinality(String)"),
    ("call_ms", "Int64"),
    ("overlap_ms", "Int64"),
    ("silence_ms", "Int64"),
    ("ended", "Nullable(Enum8('sealed' = 1, 'sealed_with_holes' = 2))"),
    ("last_active_at", "DateTime64(6, 'UTC')"),
    ("opened_at", "DateTime64(6, 'UTC')"),
    ("session_interruptions", "UInt64"),
)
"""A session's figures on each of its slices: ``opens`` on the slice of its first turn (of its
first event, without turns), the one that counts it; its first language ('' without one);
its call time, overlap and silence; ``ended`` sealed or with holes, NULL without an end (open
or abandoned, by the time of ``last_active_at`` when it is read); ``opened_at``, when it
counts: its first turn's start, or its first event's without turns; its assistant turns
interrupted, over all its turns. Inserted by position: a figure added later goes last, where
``ALTER TABLE ... ADD COLUMN`` puts it in a store made before it."""

_GENERATIONS = """
    generation UInt32,
    events_generation UInt32,
    chunks_generation UInt32,"""
_PER_GENERATIONS = "PARTITION BY (generation, events_generation, chunks_generation)"

SLICES_TABLE = f"""
CREATE TABLE IF NOT EXISTS session_slices
({_GENERATIONS}
    hour DateTime('UTC'),
    bot_id LowCardinality(String),
    session_id String,
    computed_at DateTime64(6, 'UTC'),
    turns Array({SLICE_TURN_TYPE}),
    {", ".join(f"{name} {kind}" for name, kind in SESSION_FIGURES)}
)
ENGINE = ReplacingMergeTree(computed_at)
{_PER_GENERATIONS}
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

WHOLE_FOLDS_TABLE = f"""
CREATE TABLE IF NOT EXISTS session_facts_whole_folds
(
    generation UInt32,
    events_generation UInt32,
    chunks_generation UInt32,
    second DateTime64(3, 'UTC'),
    inserts UInt64,
    hashes UInt64,
    folded_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(folded_at)
{_PER_GENERATIONS}
ORDER BY second"""
"""The inserts of the last five minutes before the mark of a refresh that folded the whole
store, second by second, as they were when it began, and the seconds of the inserts a keeper
past its bound lets go (``queries.facts``): stored, so that whichever keeper refreshes next
(after a rebuild's warm-up, another replica) folds again only the seconds that changed
since. A few hundred rows a whole-store fold."""


def quantiles(combinator: str = "") -> str:
    """SQL of the aggregate function of ``analytics.definitions``' percentiles, with
    ``combinator`` (``State``, ``Merge``...): every distribution is taken with it, cached or
    read live, so a state folded from the live tables merges with the rollups'."""
    return f"quantilesDD{combinator}({', '.join(map(str, (RELATIVE_ACCURACY, *LEVELS)))})"


PERCENTILES = f"AggregateFunction({quantiles()}, Int64)"
ROLLUP_KEYS = {
    "turn_rollups": ("hour", "bot_id", "framework", "language", "role"),
    "session_rollups": ("hour", "bot_id", "framework", "language"),
}
"""Per rollup, its key after the generations: ``language`` is a turn's own in
``turn_rollups`` and its session's first in ``session_rollups``."""
ROLLUP_VALUES = {
    "turn_rollups": (
        ("turns_n", "UInt64"),
        ("timed_n", "UInt64"),
        ("durations", PERCENTILES),
        ("talk_ms", "Int64"),
        ("latencies_n", "UInt64"),
        ("latencies", PERCENTILES),
        ("interruptions", "UInt64"),
        ("timeouts", "UInt64"),
    ),
    "session_rollups": (
        ("sessions_n", "UInt64"),
        ("call_ms_total", "Int64"),
        ("overlap_ms_total", "Int64"),
        ("overlaps", PERCENTILES),
        ("silence_ms_total", "Int64"),
        ("silences", PERCENTILES),
        ("sealed_n", "UInt64"),
        ("holed_n", "UInt64"),
        ("unsealed", "Array(DateTime64(6, 'UTC'))"),
        ("spoken_n", "UInt64"),
        ("interruptions_in_sessions", "UInt64"),
    ),
}
"""Per rollup, what its rows hold; the names are none of a slice's, so that the SQL that
folds slices into them can name its results as the table does. ``spoken_n`` counts the
sessions with turns, over which the overlap and silence percentiles are taken."""
_KINDS = {
    "hour": "DateTime('UTC')",
    "bot_id": "LowCardinality(String)",
    "framework": "LowCardinality(String)",
    "language": "LowCardinality(String)",
    "role": "Enum8('user' = 1, 'assistant' = 2)",
}
ALL_BOTS = {table: f"{table}_all_bots" for table in ROLLUP_KEYS}
"""Per rollup, the table of its rows summed over bots, keyed as it is without ``bot_id``
(``ALL_BOTS_KEYS``): a read of all bots, not split by bot, merges 20 times fewer rows, one
sketch per hour and group where it merged every bot's."""
ALL_BOTS_KEYS = {
    table: tuple(key for key in keys if key != "bot_id") for table, keys in ROLLUP_KEYS.items()
}


def _rollup_table(table: str, keys: tuple[str, ...], rollup: str) -> str:
    """The table ``table``, keyed by ``keys``, of the values of ``rollup``."""
    return f"""
CREATE TABLE IF NOT EXISTS {table}
({_GENERATIONS}
    {", ".join(f"{key} {_KINDS[key]}" for key in keys)},
    computed_at DateTime64(6, 'UTC'),
    deleted UInt8,
    {", ".join(f"{name} {kind}" for name, kind in ROLLUP_VALUES[rollup])}
)
ENGINE = ReplacingMergeTree(computed_at, deleted)
{_PER_GENERATIONS}
ORDER BY ({", ".join(sorted(keys, key=lambda key: key != "bot_id"))})
SETTINGS index_granularity = 256"""


ROLLUP_TABLES = {table: _rollup_table(table, keys, table) for table, keys in ROLLUP_KEYS.items()}
"""Ordered by bot first, in granules of 256 rows: a bot's day is a few hundred rows side by
side, and a row's percentile states are large (ordered by hour first, in granules of 8,192
rows, a bot's day read and merged the states of every bot)."""
ALL_BOTS_TABLES = {
    ALL_BOTS[table]: _rollup_table(ALL_BOTS[table], keys, table)
    for table, keys in ALL_BOTS_KEYS.items()
}
"""Ordered by hour first: a range of all bots is rows side by side."""

CARDS_TABLE = f"""
CREATE TABLE IF NOT EXISTS session_cards
({_GENERATIONS}
    bot_id LowCardinality(String),
    first_event_at DateTime64(6, 'UTC'),
    session_id String,
    computed_at DateTime64(6, 'UTC'),
    deleted UInt8,
    summary String
)
ENGINE = ReplacingMergeTree(computed_at, deleted)
{_PER_GENERATIONS}
ORDER BY (bot_id, first_event_at, session_id)
SETTINGS index_granularity = 256"""
"""Each session's summary as the listing shows it (``queries.cards``), in the listing's
order: a page is one bot's consecutive rows, in granules of 256 (a summary is about a
kilobyte of JSON)."""
CARD_KEYS_TABLE = f"""
CREATE TABLE IF NOT EXISTS session_card_keys
({_GENERATIONS}
    session_id String,
    bot_id LowCardinality(String),
    first_event_at DateTime64(6, 'UTC'),
    computed_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
{_PER_GENERATIONS}
ORDER BY session_id
SETTINGS index_granularity = 1024"""
"""Where each session's card lies: when a session's first turn moves, its card moves with
it, and the card it moved from is written deleted."""

CACHE_TABLES = (
    "session_slices",
    "session_facts_marks",
    *ROLLUP_TABLES,
    "session_cards",
    "session_card_keys",
)
"""The cache's tables up to migration 104: migrations 88-104 pack the small parts of
``WRITTEN_TABLES``, numbered 88 + a table's place there (these are 99-104), so a table added
here would renumber them. ``GENERATION_CACHES`` has them all."""
GENERATION_CACHES = (*CACHE_TABLES, "session_facts_whole_folds", *ALL_BOTS_TABLES)
"""Where a dropped generation's cached facts are deleted too."""
