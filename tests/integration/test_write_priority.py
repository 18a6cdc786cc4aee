"""The projectors' writes behind reads, and in a hurry: an insert at the normal priority on a
connection whose queries run at nice 19 is one the engine takes (a setting it did not know
would fail every batch of a store that fell behind)."""

from __future__ import annotations

import pytest

from consumers.storage.clickhouse import open_store
from tests.conftest import unique_name
from tests.integration.stored_rows import event_rows
from tstore.components import writing_behind_reads

pytestmark = pytest.mark.integration


def test_a_hurried_insert_on_a_connection_behind_reads_lands(
    clickhouse_dsn: str, database: str
) -> None:
    store = open_store(clickhouse_dsn, database, writing_behind_reads(19))
    session_id = unique_name("hurried")
    store.insert("session_events", event_rows(session_id, [0, 1]), generation=1, hurry=True)
    store.insert("session_events", event_rows(session_id, [2]), generation=1)
    count = store.client.query(
        "SELECT count() FROM session_events_generations WHERE session_id = {s:String}",
        parameters={"s": session_id},
    ).result_rows[0][0]
    assert count == 3
