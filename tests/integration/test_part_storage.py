"""How the store's tables lay out their parts on disk: a small part is one file."""

from __future__ import annotations

from datetime import timedelta

import pytest
from clickhouse_connect.driver.client import Client

import queries.facts
from consumers.projections import project
from consumers.storage.clickhouse import Store
from consumers.storage.migrations import PACKED_BELOW_BYTES
from tests.events import chunk, ended, turn_pair
from tests.frames import decoded

pytestmark = pytest.mark.integration


def test_every_table_writes_its_small_parts_packed(
    clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries.facts, "SAFETY", timedelta(0))  # the call is before the mark
    store = Store(clickhouse)
    store.migrate()
    call = decoded([*turn_pair(), chunk(seq=2), ended(3, totals={"user_chunks": 1})])
    for projection, rows in project(call.frames).items():
        store.insert(projection, rows, generation=1)
    queries.facts.FactsKeeper(clickhouse).refresh()

    tables = {
        str(name): str(ddl)
        for name, ddl in clickhouse.query(
            "SELECT name, create_table_query FROM system.tables "
            "WHERE database = currentDatabase() AND engine LIKE '%MergeTree'"
        ).result_rows
    }
    setting = f"min_bytes_for_full_part_storage = {PACKED_BELOW_BYTES}"
    assert [name for name, ddl in tables.items() if setting not in ddl] == []
    storage = {
        str(table): list(kinds)
        for table, kinds in clickhouse.query(
            "SELECT table, groupUniqArray(part_storage_type) FROM system.parts "
            "WHERE database = currentDatabase() AND active AND table != 'schema_migrations' "
            "GROUP BY table"
        ).result_rows
    }
    assert storage == {name: ["Packed"] for name in tables if name != "schema_migrations"}
