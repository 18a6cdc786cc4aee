"""Migration 116: what a fold of the whole store took in is stored, not kept in memory.

The keeper that folded the whole store noted the inserts of its last five minutes, so that
the refreshes after it did not fold a store loaded minutes before all over again. A rebuild
folds its generation's whole store in a keeper of its own (``queries.facts.warm``), and the
service's keeper, which refreshes after the cut-over, did not have that note: it folded again
every session the replay had written in its last five minutes. A note is of use for five
minutes; its rows go when the inserts they count do (``projected_sessions``' TTL).
"""

from __future__ import annotations

from consumers.storage.migrations.migration import Migration
from consumers.storage.migrations.read_caches import (
    PACKED_BELOW_BYTES,
    PROJECTED_SESSIONS_KEPT_DAYS,
)
from consumers.storage.session_facts import WHOLE_FOLDS_TABLE

WHOLE_FOLDS: tuple[Migration, ...] = (
    Migration(
        116,
        "session_facts_whole_folds",
        f"{WHOLE_FOLDS_TABLE} "
        f"TTL toDateTime(second) + INTERVAL {PROJECTED_SESSIONS_KEPT_DAYS} DAY "
        f"SETTINGS min_bytes_for_full_part_storage = {PACKED_BELOW_BYTES}",
    ),
)
