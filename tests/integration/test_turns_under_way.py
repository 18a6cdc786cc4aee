"""A turn under way in a call that goes on is not a hole: the call is complete so far and not
listed as incomplete; the same turn left open by a call that ended, or went silent for good,
is one."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas import Topics
from schemas.models import Event
from tests.events import ended
from tests.integration.api_support import Api, conversation, live_api, now, verdict

pytestmark = pytest.mark.integration


def _left_open(session_id: str, ago: timedelta) -> list[Event]:
    """A call of two turns whose assistant has started the second and not stopped it."""
    return conversation(session_id, now() - ago, turns=2)[:-1]


async def _verdicts(api: Api, *session_ids: str) -> list[dict[str, object]]:
    return [
        verdict((await api.ok(f"/v1/sessions/{s}"))["summary"]["completeness"]) for s in session_ids
    ]


@pytest.mark.parametrize("cached", [False, True], ids=["live tables", "cached cards"])
async def test_a_turn_under_way_is_counted_and_a_turn_left_open_is_a_hole(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str, cached: bool
) -> None:
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database, cached=cached) as api:
        await api.publish(
            [
                *_left_open("talking", timedelta(seconds=30)),
                *_left_open("hung-up", timedelta(seconds=30)),
                ended(3, "hung-up", bot_id="api-bot"),
                *_left_open("gone", timedelta(hours=2)),
            ]
        )
        await api.until_projected()
        if cached:
            await api.until_cached()
        talking, hung_up, gone = await _verdicts(api, "talking", "hung-up", "gone")
        assert talking == {
            "complete": True,
            "events": 3,
            "expected": 3,
            "missing": 0,
            "open_turns": 1,
            "state": "open",
            "holes": [],
        }
        assert (hung_up["state"], hung_up["holes"]) == ("sealed_with_holes", ["open_turns"])
        assert (gone["state"], gone["holes"]) == ("abandoned", ["open_turns"])

        listed = await api.ok("/v1/incomplete")
        assert {i["session_id"]: i["open_turn_ids"] for i in listed["items"]} == {
            "gone": ["turn-1"],
            "hung-up": ["turn-1"],
        }
        complete = await api.ok("/v1/sessions", complete="true")
        assert [s["session_id"] for s in complete["items"]] == ["talking"]
