"""The two statements of how a session's turns read: ``latest_turns`` in SQL (summaries,
analytics) and the fold in Python behind ``transcript``. For any stored versions of any
turns, they give the same turns and the same response latencies."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, example, given, settings

from consumers.storage.clickhouse import Store
from queries import Reader
from queries.sessions import transcript
from queries.turns import TURN_FIELDS, latest_turns
from tests.conftest import unique_name
from tests.integration.stored_rows import T0, stored_versions, transcript_rows

pytestmark = pytest.mark.integration


def _answer_at_the_user_stop() -> list[dict[str, Any]]:
    """A latency of exactly 0: the assistant starts the microsecond the user stops."""
    stop = T0 + timedelta(seconds=1)
    user = {"turn_id": "turn-0", "role": "user", "started_at": T0}
    answer = {"turn_id": "turn-1", "role": "assistant", "started_at": stop}
    return [
        user | {"stopped_at": None, "complete": False, "seq": 0},
        user | {"stopped_at": stop, "complete": True, "seq": 1},
        answer | {"stopped_at": stop + timedelta(seconds=2), "complete": True, "seq": 3},
    ]


def test_sql_and_python_read_the_same_turns_and_latencies(clickhouse: Client) -> None:
    store = Store(clickhouse)
    store.migrate()
    reader = Reader(clickhouse)
    fields = ("turn_id", *TURN_FIELDS, "response_latency_ms")

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(stored_versions())
    @example(_answer_at_the_user_stop())
    def agree(rows: list[dict[str, Any]]) -> None:
        session_id = unique_name("s")
        store.insert("transcripts", transcript_rows(session_id, rows), generation=1)
        in_sql = [
            dict(zip(fields, row, strict=True))
            for row in reader.rows(
                f"SELECT {', '.join(fields)} "
                f"FROM ({latest_turns(TURN_FIELDS, 'session_id = {sid:String}')}) ORDER BY turn_id",
                generation=1,
                sid=session_id,
            )
        ]
        in_python = sorted(transcript(reader, session_id), key=lambda t: t.turn_id)
        assert [
            (t.turn_id, t.complete, t.stopped_at, t.response_latency_ms) for t in in_python
        ] == [
            (
                r["turn_id"],
                r["complete"],
                r["stopped_at"] and r["stopped_at"].replace(tzinfo=UTC),
                r["response_latency_ms"],
            )
            for r in in_sql
        ]

    agree()
