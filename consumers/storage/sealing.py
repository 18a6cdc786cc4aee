"""What telling a sealed session from one with holes needs of the store, beside the summary.

A ``SessionEnded`` is kept in its ledger row (``session_events_generations``: the declared
event count and, per track, chunks and samples). Each session has a row in
``session_seals_generations``, filled on insert by materialized views like its summary row,
under the same rule: sets and maxima, which take a replayed duplicate without change (a sum
would count it again):

- ``ends``: the set of its ``SessionEnded`` declarations (one, unless a producer ended it twice);
- ``last_event_at``: when its newest event occurred, to tell an abandoned session;
- ``chunks``: the set of its chunks' versions (track, chunk, segment, first and end sample,
  seq), from which the readers count chunks, samples, gaps and overlaps per track
  (``queries.sealing``), each chunk in its latest version as the table keeps it.

These were columns of the summary row at first (migrations 35-39); there the turns' and the
ledger's inserts carried them through every write and merge, which cost the projector a fifth
of its throughput.
"""

from __future__ import annotations

TRACK_TYPE = "Enum8('user' = 1, 'assistant' = 2, 'mixed' = 3)"
DECLARED_TRACKS_TYPE = f"Array(Tuple(track {TRACK_TYPE}, chunks UInt64, samples UInt64))"
END_TYPE = (
    f"Tuple(seq UInt64, events UInt64, tracks {DECLARED_TRACKS_TYPE}, "
    "occurred_at DateTime64(6, 'UTC'))"
)
CHUNK_TYPE = (
    f"Tuple(track {TRACK_TYPE}, chunk_seq UInt64, recording_started_at DateTime64(6, 'UTC'), "
    "start_sample UInt64, end_sample UInt64, seq UInt64)"
)

LEDGER_COLUMNS = (
    f"ADD COLUMN IF NOT EXISTS declared_events Nullable(UInt64) AFTER occurred_at, "
    f"ADD COLUMN IF NOT EXISTS declared_tracks {DECLARED_TRACKS_TYPE} AFTER declared_events"
)
SUMMARY_COLUMNS = (  # migration 35's, undone by 43
    f"ADD COLUMN IF NOT EXISTS ends AggregateFunction(groupUniqArray, {END_TYPE}), "
    "ADD COLUMN IF NOT EXISTS last_event_at SimpleAggregateFunction(max, DateTime64(6, 'UTC')), "
    f"ADD COLUMN IF NOT EXISTS chunks AggregateFunction(groupUniqArray, {CHUNK_TYPE})"
)
SEALS_TABLE = f"""
CREATE TABLE IF NOT EXISTS session_seals_generations
(
    generation UInt32,
    session_id String,
    ends AggregateFunction(groupUniqArray, {END_TYPE}),
    last_event_at SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    chunks AggregateFunction(groupUniqArray, {CHUNK_TYPE})
)
ENGINE = AggregatingMergeTree
PARTITION BY generation
ORDER BY (generation, session_id)
SETTINGS index_granularity_bytes = 8192, min_compress_block_size = 4096,
    max_compress_block_size = 65536"""
"""Read, like the summary rows, a page of scattered sessions at a time: small granules."""
END_VALUE = (
    f"CAST((seq, assumeNotNull(declared_events), declared_tracks, occurred_at) AS {END_TYPE})"
)
"""A ``SessionEnded`` ledger row as an element of ``ends``."""
CHUNK_VALUE = (
    f"CAST((track, chunk_seq, recording_started_at, start_sample, end_sample, seq) AS {CHUNK_TYPE})"
)
"""A row of ``audio_chunks_generations`` as an element of ``chunks``."""
IS_END = "event_type = 'SessionEnded'"

SEALING_SOURCES = {
    "session_events": {
        "ends": f"groupUniqArrayStateIf({END_VALUE}, {IS_END})",
        "last_event_at": "max(occurred_at)",
    },
    "audio_chunks": {"chunks": f"groupUniqArrayState({CHUNK_VALUE})"},
}
"""What each projection adds to a session's row of ``session_seals_generations``, as
``SESSION_SUMMARY_SOURCES`` says for the summary (``consumers.storage.migrations``)."""
