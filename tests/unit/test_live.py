"""The pure pieces of a session's live stream: the follower's fold and cursor, and the feed's
bounded subscriptions."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.live_feed import LiveFeed
from queries import BadQueryError, Turn
from queries.live import Cursor, Follower, Position
from tests.events import T0

TURNS = 3


def turn_row(turn: int, complete: bool, offset: int) -> dict[str, Any]:
    """A transcripts row as the projector writes it: turn ``turn`` started (seq 2n) or
    stopped (seq 2n + 1), read from ``offset``."""
    started = T0 + timedelta(seconds=3 * turn)
    seq = 2 * turn + complete
    return {
        "turn_id": f"t{turn}",
        "version": seq + (1 << 63 if complete else 0),
        "bot_id": "bot-1",
        "framework": "test",
        "role": "user" if turn % 2 == 0 else "assistant",
        "started_at": started,
        "stopped_at": started + timedelta(seconds=2) if complete else None,
        "duration_ms": 2000 if complete else None,
        "text": f"turn {turn}" if complete else "",
        "interrupted": False,
        "timed_out": False,
        "user_id": None,
        "language": None,
        "words": [],
        "complete": complete,
        "seq": seq,
        "source_partition": 0,
        "source_offset": offset,
    }


ROWS = [turn_row(n // 2, bool(n % 2), n) for n in range(2 * TURNS)]
"""A call's turn rows in log order."""


def sent_turns(follower: Follower, batches: list[list[dict[str, Any]]]) -> list[Turn]:
    """The turns ``follower`` sends, given ``batches`` one after the other (and then)."""
    sent = [answer for _, answer in follower.changes()]
    for batch in batches:
        follower.add({"transcripts": batch})
        sent += [answer for _, answer in follower.changes()]
    return [turn for turn in sent if isinstance(turn, Turn)]


@given(st.lists(st.sampled_from(ROWS), min_size=1).flatmap(lambda rows: st.permutations(rows)))
def test_any_order_and_repetition_of_rows_ends_in_the_same_turns_each_change_sent_once(
    rows: list[dict[str, Any]],
) -> None:
    follower = Follower()
    sent = sent_turns(follower, [[row] for row in rows])
    assert len({t.model_dump_json() for t in sent}) == len(sent), "a turn sent twice as it was"
    whole = Follower()
    whole.add({"transcripts": rows})
    assert follower.turns == {t.turn_id: t for t in whole.session.turn_answers()}


def test_an_answer_s_latency_changes_when_the_user_turn_before_it_stops() -> None:
    follower = Follower()
    first = sent_turns(follower, [[ROWS[0], ROWS[2]]])
    assert [(t.turn_id, t.response_latency_ms) for t in first] == [("t0", None), ("t1", None)]
    then = sent_turns(follower, [[ROWS[1]]])
    assert [(t.turn_id, t.complete, t.response_latency_ms) for t in then] == [
        ("t0", True, None),
        ("t1", False, 1000),
    ]


def test_a_follower_resumed_from_a_cursor_sends_only_what_its_client_lacks() -> None:
    told = Follower()
    sent_turns(told, [ROWS[:3]])
    cursor = Cursor.parse(told.session.cursor.text())
    assert cursor == Cursor(turns=Position(0, 2))
    resumed = Follower.resumed({"transcripts": ROWS}, cursor)
    assert [(t.turn_id, t.complete) for t in sent_turns(resumed, [])] == [
        ("t1", True),
        ("t2", True),
    ]
    assert (
        Follower.resumed({"transcripts": ROWS}, None).changes()
        == Follower.resumed({"transcripts": ROWS}, Cursor()).changes()
    )


@pytest.mark.parametrize(
    "text", ["", "-.-", "-.-.-.-", "1.-.-", "1:x.-.-", "-1:2.-.-", "1:2:3.-.-"]
)
def test_an_event_id_the_stream_did_not_send_is_refused_naming_the_header(text: str) -> None:
    with pytest.raises(BadQueryError) as refused:
        Cursor.parse(text)
    assert refused.value.parameter == "Last-Event-ID"


def test_a_cursor_reads_back_as_written() -> None:
    cursor = Cursor(turns=Position(3, 120), ledger=Position(3, 7))
    assert cursor.text() == "3:120.-.3:7"
    assert Cursor.parse(cursor.text()) == cursor


def frame(*session_ids: str) -> dict[str, pl.DataFrame]:
    return {
        "transcripts": pl.DataFrame({"session_id": list(session_ids), "n": range(len(session_ids))})
    }


async def test_a_subscription_gets_its_session_s_rows_and_is_told_to_resync_when_it_overflows() -> (
    None
):
    feed = LiveFeed(limit=3)
    feed.publish(frame("a"))  # nobody follows: nothing kept
    with feed.subscribe("a") as following, feed.subscribe("b") as other:
        feed.publish(frame("a", "b", "a"))
        delivery = await following.next(1)
        assert delivery.batches == [
            {"transcripts": [{"session_id": "a", "n": 0}, {"session_id": "a", "n": 2}]}
        ]
        assert not delivery.resync
        for _ in range(4):
            feed.publish(frame("a"))
        assert (await following.next(1)).resync
        assert (await other.next(1)).batches == [{"transcripts": [{"session_id": "b", "n": 1}]}]
        waited = asyncio.get_running_loop().time()
        assert (await following.next(0.05)).batches == []
        assert asyncio.get_running_loop().time() - waited >= 0.05
    assert not feed._following
