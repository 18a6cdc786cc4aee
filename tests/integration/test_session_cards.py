"""The listing's cache (``queries.cards``) in the embedded engine: every page, filter and
cursor reads as the live tables give it, after a refresh, for what was projected after its
mark, and after a session's first turn moved; and a page from the cache summarizes nothing."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

import queries.cards
import queries.facts
import queries.folded
import queries.marks
import queries.paging
import queries.sessions
from consumers.storage.clickhouse import Store, connect
from queries import Reader, SessionFilters
from queries.facts import FactsKeeper
from queries.marks import Generations
from queries.models import SessionSummary
from queries.sessions import list_sessions
from tests.conftest import unique_name
from tests.integration.stored_rows import T0, chunk_rows, event_rows, transcript_rows
from tests.integration.test_metrics import _session, _turn, three_calls

pytestmark = pytest.mark.integration

__all__ = ["three_calls"]  # the fixture, used here too

FILTERS: list[dict[str, Any]] = [
    {},
    {"bot_id": "rules"},
    {"bot_id": "other"},
    {"has_interruption": True},
    {"has_timeout": False},
    {"min_turns": 3},
    {"max_turns": 2},
    {"state": "abandoned"},
    {"complete": True},
    {"since": T0 + timedelta(seconds=50), "until": T0 + timedelta(seconds=250)},
]


@pytest.fixture(autouse=True)
def _marks_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mark as late as the refresh itself, so what a test wrote before it is read from the
    cache rather than live."""
    monkeypatch.setattr(queries.facts, "SAFETY", timedelta(0))


@pytest.fixture
def second(clickhouse_dsn: str, database: str) -> Client:
    """Another connection to the store, as the service's keeper folds on two."""
    return connect(clickhouse_dsn, database)


def _walk(reader: Reader, filters: dict[str, Any], limit: int) -> list[list[SessionSummary]]:
    """Every page of the listing, following its cursors."""
    pages, cursor = [], None
    while True:
        page = list_sessions(reader, SessionFilters(**filters), cursor=cursor, limit=limit)
        pages.append(page.items)
        if (cursor := page.next_cursor) is None:
            return pages


def _both_ways(reader: Reader, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each listing read through the cache is the one the live tables give, page by page."""
    for filters in FILTERS:
        for limit in (1, 50):
            cached = _walk(reader, filters, limit)
            with monkeypatch.context() as live:
                live.setattr(queries.cards.Cards, "of", lambda _: None)
                assert cached == _walk(reader, filters, limit), (filters, limit)


def _cards(client: Client) -> list[tuple[str, int]]:
    """Each session's cards, each in its newest version: its id, and whether it is deleted
    (``FINAL`` leaves those out)."""
    rows = client.query(
        "SELECT session_id, argMax(deleted, computed_at) AS gone FROM session_cards "
        "GROUP BY bot_id, first_event_at, session_id ORDER BY session_id, gone"
    ).result_rows
    return [(str(s), int(d)) for s, d in rows]


def _stopped(store: Store, session_id: str, bot: str, turn: list[dict[str, Any]]) -> None:
    """A turn's stopped version, added to a session the cache holds."""
    store.insert(
        "transcripts", transcript_rows(session_id, [turn[1] | {"bot_id": bot}]), generation=1
    )


def test_the_cached_listing_reads_as_the_live_one_and_summarizes_nothing(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, sessions = three_calls
    reader = Reader(client)
    monkeypatch.setattr(queries.facts, "PART_SESSIONS", 1)
    FactsKeeper(client).refresh()
    assert _cards(client) == sorted((s, 0) for s in sessions)
    _both_ways(reader, monkeypatch)

    def summarized(*_: Any) -> None:
        raise AssertionError("a page of cached sessions was summarized live")

    with monkeypatch.context() as cached_only:
        cached_only.setattr(queries.sessions, "summaries", summarized)
        (page,) = _walk(reader, {}, 50)
    assert [s.session_id for s in page] == sessions[::-1]
    assert page[0].completeness.state == "abandoned"  # C, settled as the listing is read


def test_cards_count_chunks_as_live_summaries_do(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh counts its sessions' chunks in the engine, a live summary in Python."""
    client, (a, b, _) = three_calls
    store = Store(client)
    user = [("user", 0, 0, 0, 100), ("user", 1, 0, 150, 100), ("user", 2, 3, 0, 80)]  # a gap
    assistant = [("assistant", 0, 0, 0, 100), ("assistant", 1, 0, 50, 100)]  # an overlap
    store.insert("audio_chunks", chunk_rows(a, user + assistant), generation=1)
    store.insert("audio_chunks", chunk_rows(b, [("mixed", 0, 1, 0, 300)]), generation=1)
    FactsKeeper(client).refresh()
    _both_ways(Reader(client), monkeypatch)
    (page,) = _walk(Reader(client), {}, 50)
    tracks = {s.session_id: s.completeness.tracks for s in page}
    assert [(t.track, t.chunks, t.samples, t.gaps, t.overlaps) for t in tracks[a]] == [
        ("user", 3, 280, 1, 0),
        ("assistant", 2, 200, 0, 1),
    ]
    assert [(t.track, t.chunks, t.samples) for t in tracks[b]] == [("mixed", 1, 300)]


def test_what_came_after_the_mark_is_listed_live_until_the_next_refresh(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, sessions = three_calls
    reader, store, keeper = Reader(client), Store(client), FactsKeeper(client)
    keeper.refresh()
    newer = _session(store, "rules", [_turn("n1", "user", 150, 151, 0)], [0, 1], None)
    _stopped(store, sessions[0], "rules", _turn("a5", "user", 9, 10, 8, interrupted=True))
    _both_ways(reader, monkeypatch)  # one new session, one changed: both read live
    keeper.refresh()
    _both_ways(reader, monkeypatch)
    assert _cards(client) == sorted((s, 0) for s in [*sessions, newer])


def test_a_session_whose_first_turn_moved_is_listed_once_where_it_now_begins(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, sessions = three_calls
    reader, store, keeper = Reader(client), Store(client), FactsKeeper(client)
    keeper.refresh()
    _stopped(store, sessions[1], "other", _turn("b0", "user", 50, 51, 9))  # before b1
    keeper.refresh()
    assert _cards(client) == sorted([*((s, 0) for s in sessions), (sessions[1], 1)])
    _both_ways(reader, monkeypatch)
    (page,) = _walk(reader, {"bot_id": "other"}, 50)
    assert [(s.session_id, s.first_event_at) for s in page] == [
        (sessions[1], T0 + timedelta(seconds=50))
    ]


def test_a_refresh_on_two_connections_caches_as_one_does(
    three_calls: tuple[Client, list[str]], second: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each session a batch of its own: the first two batches wait for each other, which
    only a keeper working on two connections side by side gets past."""
    client, sessions = three_calls
    monkeypatch.setattr(queries.cards, "WRITE_BATCH", 1)
    written, together, calls = (
        queries.cards.write_cards,
        threading.Barrier(2, timeout=30),
        itertools.count(),
    )

    def side_by_side(*args: Any) -> None:
        if next(calls) < 2:
            together.wait()
        written(*args)

    monkeypatch.setattr(queries.facts, "write_cards", side_by_side)
    FactsKeeper(client, second).refresh()
    assert _cards(client) == sorted((s, 0) for s in sessions)
    _both_ways(Reader(client), monkeypatch)


def test_a_refresh_whose_batch_of_cards_fails_says_so_and_marks_nothing(
    three_calls: tuple[Client, list[str]], second: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = three_calls
    monkeypatch.setattr(queries.cards, "WRITE_BATCH", 1)
    written = queries.cards.write_cards
    batches = itertools.count()

    def fails_second(*args: Any) -> None:
        if next(batches) == 1:
            raise RuntimeError("the engine went away")
        written(*args)

    monkeypatch.setattr(queries.facts, "write_cards", fails_second)
    with pytest.raises(RuntimeError, match="went away"):
        FactsKeeper(client, second).refresh()
    reader = Reader(client)
    assert queries.marks.mark(reader, Generations.of(reader)) is None


def test_a_refresh_whose_two_batches_fail_side_by_side_names_both(
    three_calls: tuple[Client, list[str]], second: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = three_calls
    monkeypatch.setattr(queries.cards, "WRITE_BATCH", 1)
    together, batches = threading.Barrier(2, timeout=30), itertools.count()

    def fails(*_: Any) -> None:
        n = next(batches)
        if n < 2:
            together.wait()
            raise RuntimeError(f"batch {n} failed")

    monkeypatch.setattr(queries.facts, "write_cards", fails)
    with pytest.raises(RuntimeError) as failed:
        FactsKeeper(client, second).refresh()
    other = 1 - int(str(failed.value).removeprefix("batch ").removesuffix(" failed"))
    assert failed.value.__notes__ == [f"and beside it: {RuntimeError(f'batch {other} failed')!r}"]


def test_a_refresh_told_to_stop_while_writing_cards_stops_without_marking(
    three_calls: tuple[Client, list[str]],
) -> None:
    client = three_calls[0]
    asked = iter([False, True])  # before the part; then before its first batch of cards
    assert FactsKeeper(client).refresh(lambda: next(asked, True)) == 0
    reader = Reader(client)
    assert queries.marks.mark(reader, Generations.of(reader)) is None
    assert _cards(client) == []


def test_an_insert_that_landed_after_its_refresh_is_cached_one_overlap_later(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first refresh marks 10 s ahead, as if its last 10 s of inserts had yet to land;
    a turn written then is before the mark, outside the next refresh's own span, and inside
    the span ``OVERLAP`` before it."""
    client, sessions = three_calls
    monkeypatch.setattr(queries.facts, "SAFETY", timedelta(seconds=-10))
    monkeypatch.setattr(queries.folded, "OVERLAP", timedelta(seconds=10))
    reader, store, keeper = Reader(client), Store(client), FactsKeeper(client)
    keeper.refresh()
    _stopped(store, sessions[0], "rules", _turn("a5", "user", 9, 10, 8, interrupted=True))
    keeper.refresh()
    _both_ways(reader, monkeypatch)


def test_a_call_nobody_spoke_in_is_listed_from_its_events_live_and_cached(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its card is made from its ledger; until a refresh caches it, the listing finds it in
    its ledger, among the sessions projected after the mark. Once it has a turn, it is
    listed where that turn begins, once."""
    client, sessions = three_calls
    reader, store, keeper = Reader(client), Store(client), FactsKeeper(client)
    keeper.refresh()
    silent = unique_name("silent")
    store.insert("session_events", event_rows(silent, [0, 1, 2], (3, [])), generation=1)
    assert silent in _ids(reader, {})
    _both_ways(reader, monkeypatch)
    keeper.refresh()
    reader = Reader(client)  # not the mark the last one holds for a second
    (page,) = _walk(reader, {}, 50)
    (found,) = (s for s in page if s.session_id == silent)
    assert (found.bot_id, found.first_event_at, found.turns.user + found.turns.assistant) == (
        "rules",
        T0,
        0,
    )
    assert (found.completeness.state, found.last_event_at) == ("sealed", T0 + timedelta(seconds=2))
    assert [s.session_id for s in page] == [sessions[2], sessions[1], silent, sessions[0]]
    assert silent in _ids(reader, {"max_turns": 0, "state": "sealed", "bot_id": "rules"})
    assert silent not in _ids(reader, {"min_turns": 1}) | _ids(reader, {"bot_id": "other"})

    _stopped(store, silent, "rules", _turn("s1", "user", 300, 301, 3))
    _both_ways(reader, monkeypatch)  # its card passed over, its turn read live
    keeper.refresh()
    reader = Reader(client)
    _both_ways(reader, monkeypatch)
    assert _walk(reader, {}, 50)[0][0].session_id == silent
    assert (silent, 1) in _cards(client)


def _ids(reader: Reader, filters: dict[str, Any]) -> set[str]:
    return {s.session_id for page in _walk(reader, filters, 500) for s in page}


@pytest.mark.parametrize("statements", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("cached", [False, True], ids=["no cache", "after the mark"])
def test_a_call_whose_first_turn_lands_during_a_read_is_listed_once(
    three_calls: tuple[Client, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    cached: bool,
    statements: int,
) -> None:
    """A call without turns gets its first turn, where its first event lies, after the
    listing's ``statements``-th read of live candidates, one candidate a read. It is listed
    once, with or without that turn, whenever it lands. When the calls with turns and those
    without were read by two statements, each in its own batches, the one with turns could
    read past it (before its turn) and the one without reach it after (with its turn): it was
    missing when it landed after the fourth (another call without turns, newer than it, made
    the second read the later)."""
    client, _ = three_calls
    reader, store = Reader(client, pointer_ttl_s=0.0), Store(client)
    if cached:
        FactsKeeper(client).refresh()
    newer, silent = unique_name("newer"), unique_name("silent")
    store.insert("session_events", event_rows(newer, [0, 1], start=T0 + _S * 75), generation=1)
    store.insert("session_events", event_rows(silent, [0, 1], start=T0 + _S * 50), generation=1)
    batches, read = queries.paging.window_batches, [0]

    def turn_lands(*args: Any) -> Iterator[Sequence[Sequence[Any]]]:
        for rows in batches(*args):
            read[0] += 1
            if read[0] == statements:
                _stopped(store, silent, "rules", _turn("l1", "user", 50, 51, 2))
            yield rows

    monkeypatch.setattr(queries.sessions, "window_batches", turn_lands)
    monkeypatch.setattr(queries.sessions, "_batch_sizes", lambda *_: itertools.repeat(1))
    listed = [s for s in _walk(reader, {}, 50)[0] if s.session_id == silent]
    assert [s.first_event_at for s in listed] == [T0 + _S * 50]


def test_a_call_handed_to_another_bot_is_listed_under_the_bot_it_began_with(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As its summary and the analytics count it: the listing found it by the turns or events
    of the bot asked for, and listed it under the other bot's name."""
    client, _ = three_calls
    reader, store = Reader(client, pointer_ttl_s=0.0), Store(client)
    spoken, silent = unique_name("handed"), unique_name("handed-silent")
    turns = [
        v | {"bot_id": bot}
        for bot, turn in (
            ("rules", _turn("h1", "user", 60, 61, 0)),
            ("other", _turn("h2", "assistant", 62, 63, 2)),
        )
        for v in turn
    ]
    store.insert("transcripts", transcript_rows(spoken, turns), generation=1)
    store.insert("session_events", event_rows(silent, [0], start=T0 + _S * 70), generation=1)
    store.insert(
        "session_events",
        event_rows(silent, [1], start=T0 + _S * 70, bot_id="other"),
        generation=1,
    )
    for refreshed in (False, True):
        if refreshed:
            FactsKeeper(client).refresh()
            reader = Reader(client, pointer_ttl_s=0.0)
        assert {spoken, silent} <= _ids(reader, {"bot_id": "rules"})
        assert not {spoken, silent} & _ids(reader, {"bot_id": "other"})
        _both_ways(reader, monkeypatch)


_S = timedelta(seconds=1)
