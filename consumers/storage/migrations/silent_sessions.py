"""Migrations 108-110: the analytics count sessions without turns.

A call nobody spoke in (the bot failed before its greeting, the caller hung up at once) had
no slice in the analytics' cache, so the analytics did not count it at all, while the
listing showed it: the calls that most need an alert were the ones missing. Such a session
now has a slice of its own in the hour of its first event, which says when it counts
(``opened_at``), and the session rollups count apart the sessions with turns, over which the
overlap and silence percentiles are taken (``spoken_n``). The columns are those
``consumers.storage.session_facts`` now creates; the marks go, so that the next refresh
folds every session again, the silent ones included.
"""

from __future__ import annotations

from consumers.storage.migrations.migration import Migration

SILENT_SESSIONS: tuple[Migration, ...] = (
    Migration(
        108,
        "session_slices_opened_at",
        "ALTER TABLE session_slices ADD COLUMN IF NOT EXISTS opened_at DateTime64(6, 'UTC')",
    ),
    Migration(
        109,
        "session_rollups_spoken_n",
        "ALTER TABLE session_rollups ADD COLUMN IF NOT EXISTS spoken_n UInt64",
    ),
    Migration(110, "session_facts_marks_for_silent_sessions", "TRUNCATE TABLE session_facts_marks"),
)
