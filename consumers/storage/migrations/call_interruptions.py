"""Migrations 113-115: interruptions per call minute count the interruptions of the calls
that began in a bucket.

They divided the interruptions of the turns started in a bucket by the call time of the
sessions begun in it: a call begun at 07:59 and interrupted at 08:00:10 gave 07:00 a rate of
0 and 08:00 none. Each slice now carries its session's interruptions
(``session_interruptions``), and the session rollups their sum
(``interruptions_in_sessions``); the marks go, so that the next refresh folds every session
again with them.
"""

from __future__ import annotations

from consumers.storage.migrations.migration import Migration

CALL_INTERRUPTIONS: tuple[Migration, ...] = (
    Migration(
        113,
        "session_slices_session_interruptions",
        "ALTER TABLE session_slices ADD COLUMN IF NOT EXISTS session_interruptions UInt64",
    ),
    Migration(
        114,
        "session_rollups_interruptions_in_sessions",
        "ALTER TABLE session_rollups ADD COLUMN IF NOT EXISTS interruptions_in_sessions UInt64",
    ),
    Migration(
        115, "session_facts_marks_for_call_interruptions", "TRUNCATE TABLE session_facts_marks"
    ),
)
