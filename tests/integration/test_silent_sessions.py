"""Sessions without turns (a call nobody spoke in, often one that failed before its greeting)
in the embedded engine: an empty transcript; in the analytics, counted in the bucket of
their first event, by their state, outside the overlap and silence percentiles; read the
same through the cache as from the live tables; and counted once, where their first turn
lies, when turns arrive."""

from __future__ import annotations

from datetime import timedelta

import pytest
from clickhouse_connect.driver.client import Client

from consumers.storage.clickhouse import Store
from queries import Reader, SessionFilters
from queries.errors import NotFoundError
from queries.facts import FactsKeeper
from queries.metrics import metrics
from queries.models import Metrics, SessionSummary, StateCounts
from queries.recording import moment
from queries.sessions import list_sessions, transcript
from tests.conftest import unique_name
from tests.integration.stored_rows import T0, event_rows, sketched, transcript_rows
from tests.integration.test_metrics import _hour, _session, _turn, three_calls
from tests.integration.test_session_facts import _both_ways, _marks_at_once

pytestmark = pytest.mark.integration

__all__ = ["_marks_at_once", "three_calls"]  # the fixtures, used here too


def _silent(store: Store, bot: str, minute: int, seqs: list[int], events: int | None) -> str:
    """A session of ``seqs`` only, from ``minute`` past ``T0``; ended declaring ``events``."""
    session_id = unique_name("s")
    end: tuple[int, list[tuple[str, int, int]]] | None = None if events is None else (events, [])
    start = T0 + timedelta(minutes=minute)
    store.insert(
        "session_events",
        event_rows(session_id, seqs, end, bot_id=bot, start=start),
        generation=1,
    )
    return session_id


@pytest.fixture
def two_silent(three_calls: tuple[Client, list[str]]) -> Client:
    """Beside the three calls: one of "rules" at minute 30 that ended whole, and one of
    "quiet" at minute 40 that never ended, weeks ago (abandoned)."""
    client, _ = three_calls
    store = Store(client)
    _silent(store, "rules", 30, [0, 1, 2], 3)
    _silent(store, "quiet", 40, [0], None)
    return client


def test_a_call_nobody_spoke_in_counts_where_its_first_event_lies(two_silent: Client) -> None:
    reader = Reader(two_silent)
    (row,) = _hour(reader).rows
    assert row.sessions == 5
    assert row.completeness == StateCounts(sealed=2, sealed_with_holes=1, abandoned=2, open=0)
    assert row.overlap_ms is not None
    assert row.silence_ms is not None
    assert row.overlap_ms.per_session is not None
    assert row.silence_ms.per_session is not None
    assert (row.overlap_ms.per_session.count, row.silence_ms.per_session.count) == (3, 3)
    assert row.silence_ms.per_session.p50 == sketched([700, 1_000, 2_100])  # no 0 added
    minutes = {r.bucket_start - T0: r for r in _hour(reader, bucket="minute").rows}
    assert sorted(minutes) == [timedelta(minutes=m) for m in (0, 1, 3, 30, 40)]
    quiet = minutes[timedelta(minutes=40)]
    assert (quiet.sessions, quiet.turns.user, quiet.turns.assistant) == (1, 0, 0)
    assert quiet.call_ms == 0
    assert quiet.interruptions_per_call_minute is None
    by_bot = {r.group: r.sessions for r in _hour(reader, group_by="bot").rows}
    assert by_bot == {"rules": 3, "other": 1, "quiet": 1}
    by_framework = {r.group: r.sessions for r in _hour(reader, group_by="framework").rows}
    assert by_framework == {"test": 3, "": 2}
    assert _listed(reader) == 5  # the listing and the analytics agree, before any cache
    _session(Store(two_silent), "rules", [_turn("o1", "user", 600, 601, 0)], [0, 1], None)
    two_silent.command("OPTIMIZE TABLE transcripts_generations FINAL")  # its turn one row
    assert (_total(_hour(reader)), _listed(reader)) == (6, 6)  # and its ledger two: not silent


def test_the_cache_counts_them_as_the_live_tables_do(
    two_silent: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = Reader(two_silent, pointer_ttl_s=0.0)
    keeper = FactsKeeper(two_silent)
    keeper.refresh()
    _both_ways(reader, monkeypatch)
    _silent(Store(two_silent), "quiet", 50, [0, 1], None)  # after the mark: read live
    _both_ways(reader, monkeypatch)
    assert _listed(reader) == 6
    keeper.refresh()
    _both_ways(reader, monkeypatch)
    assert _total(_hour(reader)) == 6
    assert _listed(reader) == 6


def test_turns_that_arrive_later_move_the_call_to_its_first_turn(
    two_silent: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(two_silent)
    reader = Reader(two_silent, pointer_ttl_s=0.0)
    keeper = FactsKeeper(two_silent)
    late = _silent(store, "rules", 50, [0, 1], None)
    keeper.refresh()
    assert _total(_hour(reader)) == 6
    turn = _turn("l1", "user", 7_300, 7_301, 2)  # two hours on: in another hour
    store.insert("transcripts", transcript_rows(late, turn), generation=1)
    _both_ways(reader, monkeypatch, hours=3)
    keeper.refresh()
    _both_ways(reader, monkeypatch, hours=3)
    assert _total(_hour(reader)) == 5
    two_hours_on = _hour_after(reader, hours=2)
    assert _total(two_hours_on) == 1
    ((opened,),) = two_silent.query(
        "SELECT count() FROM session_slices FINAL WHERE opens AND session_id = {s:String}",
        parameters={"s": late},
    ).result_rows
    assert opened == 1  # the slice of its first event was written empty


def test_a_call_handed_to_another_bot_belongs_to_the_bot_it_began_with(
    two_silent: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its events name two bots: the analytics, read live or through the cache, and its
    summary in the listing give it to the bot of its first event, whichever row the engine
    meets first."""
    store = Store(two_silent)
    session_id = unique_name("s")
    start = T0 + timedelta(minutes=45)
    store.insert(
        "session_events", event_rows(session_id, [2, 3], bot_id="a-late", start=start), generation=1
    )
    store.insert(
        "session_events", event_rows(session_id, [0, 1], bot_id="first", start=start), generation=1
    )
    reader = Reader(two_silent, pointer_ttl_s=0.0)
    by_bot = {r.group: r.sessions for r in _hour(reader, group_by="bot").rows}
    assert by_bot == {"rules": 3, "other": 1, "quiet": 1, "first": 1}
    FactsKeeper(two_silent).refresh()
    _both_ways(reader, monkeypatch)
    assert {r.group: r.sessions for r in _hour(reader, group_by="bot").rows} == by_bot
    (summary,) = (s for s in _page(reader) if s.session_id == session_id)
    assert summary.bot_id == "first"


def test_a_call_nobody_spoke_in_has_an_empty_transcript_and_says_why_it_has_no_audio(
    two_silent: Client,
) -> None:
    """It is in the store: its transcript is empty, and what needs turns or audio names what
    it lacks, where a session the store does not know is not there at all."""
    reader = Reader(two_silent)
    silent = _silent(Store(two_silent), "rules", 50, [0, 1], None)
    assert transcript(reader, silent) == []
    with pytest.raises(NotFoundError, match="has neither turns nor audio stored"):
        moment(reader, silent, 0)
    for missing in (lambda: transcript(reader, "nobody"), lambda: moment(reader, "nobody", 0)):
        with pytest.raises(NotFoundError, match="no session 'nobody' in the store"):
            missing()


def _listed(reader: Reader) -> int:
    return len(_page(reader))


def _page(reader: Reader) -> list[SessionSummary]:
    return list_sessions(reader, SessionFilters(since=T0, until=T0 + timedelta(hours=1))).items


def _total(found: Metrics) -> int:
    return sum(r.sessions or 0 for r in found.rows)


def _hour_after(reader: Reader, hours: int) -> Metrics:
    since = T0 + timedelta(hours=hours)
    return metrics(reader, since=since, until=since + timedelta(hours=1))
