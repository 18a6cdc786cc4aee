"""Migrations 111-112: each store has an id of its own, which names its consumer groups.

The groups were named after the setting alone (``tstore-projector.g1``), and Kafka keeps a
group's offsets after its store is gone: a store made anew (its data path removed, its
database dropped) took up the offsets of the one before and started empty, "caught up",
with every earlier event skipped; two stores on one broker shared the partitions between
them. A store created from now on gets a random id, and its groups carry it
(``consumers.projector.group_for``), so it reads the topics from their start. A store that
already holds rows keeps the empty id, and with it the groups whose offsets it wrote.
"""

from __future__ import annotations

from consumers.storage.migrations.migration import Migration
from consumers.storage.migrations.read_caches import PACKED_BELOW_BYTES

_HOLDS_ROWS = " OR ".join(
    f"(SELECT count() FROM {table}_generations) > 0"
    for table in ("transcripts", "audio_chunks", "session_events")
)

STORE_IDENTITY: tuple[Migration, ...] = (
    Migration(
        111,
        "store_identity",
        "CREATE TABLE IF NOT EXISTS store_identity (store_id String) "
        "ENGINE = MergeTree ORDER BY tuple() "
        f"SETTINGS min_bytes_for_full_part_storage = {PACKED_BELOW_BYTES}",
    ),
    Migration(
        112,
        "store_identity_chosen",
        "INSERT INTO store_identity SELECT if("
        f"{_HOLDS_ROWS}, '', substring(replaceAll(toString(generateUUIDv4()), '-', ''), 1, 12)) "
        "WHERE (SELECT count() FROM store_identity) = 0",
    ),
)
