"""The analytics' cache of sessions (``queries.facts``) in the embedded engine: the figures read
through it are those folded from the live tables, after the first refresh (in parts), for
what was projected after its mark, and after a turn's later version moved it to another
hour; and any split of any stored versions around a refresh reads the same."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings

import queries.cards
import queries.folded
import queries.metrics
from consumers.storage.clickhouse import Store, connect
from consumers.storage.migrations import PROJECTED_SESSIONS_KEPT_DAYS
from queries import Reader, SessionFilters
from queries.facts import FactsKeeper
from queries.marks import Generations, projected_after
from queries.models import Metrics
from queries.sessions import list_sessions
from tests.conftest import unique_name
from tests.integration.stored_rows import T0, split, stored_versions, transcript_rows
from tests.integration.test_metrics import _session, _turn, three_calls

pytestmark = pytest.mark.integration

__all__ = ["three_calls"]  # the fixture, used here too

OPTIONS: list[dict[str, Any]] = [
    {},
    {"group_by": "bot"},
    {"group_by": "role"},
    {"group_by": "language", "bucket": "minute"},
    {"bot_id": "rules", "bucket": "day"},
]
SHAPES = [
    *OPTIONS,
    {"group_by": "language"},
    {"group_by": "framework"},
    {"bot_id": "rules", "group_by": "role"},
]
"""Every grouping, from the rollups and with or without a bot: what each fixed case reads
both ways. A property test's every example reads ``OPTIONS``, one of each kind of read."""


@pytest.fixture(autouse=True)
def _marks_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mark as late as the refresh itself, so what a test wrote before it is read from the
    cache rather than live (the service leaves ``SAFETY`` for inserts under way)."""
    monkeypatch.setattr(queries.facts, "SAFETY", timedelta(0))


WHOLE_HOURS = [o for o in SHAPES if o.get("bucket") != "minute"]
"""The options whose buckets are whole hours: those read from the rollups."""


def _both_ways(
    reader: Reader,
    monkeypatch: pytest.MonkeyPatch,
    hours: int = 2,
    every: Sequence[dict[str, Any]] = tuple(SHAPES),
) -> None:
    """The figures read with the cache are those folded from the live tables alone."""
    for options in every:
        cached = _range(reader, hours, options)
        with monkeypatch.context() as live:
            live.setattr(queries.metrics, "mark", lambda *_: None)
            assert cached == _range(reader, hours, options), options


def _range(reader: Reader, hours: int, options: dict[str, Any]) -> Metrics:
    return queries.metrics.metrics(
        reader, since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=hours), **options
    )


def _cached_slices(client: Client) -> int:
    return int(
        client.query("SELECT count() FROM session_slices FINAL WHERE notEmpty(turns)").result_rows[
            0
        ][0]
    )


def test_the_cache_reads_as_the_live_tables_do(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = three_calls
    reader = Reader(client)
    across = [_turn("f1", "user", 3_590, 3_595, 0), _turn("f2", "assistant", 3_605, 3_610, 2)]
    _session(Store(client), "rules", across, [0, 1, 2, 3], 4)  # two hours: two slices
    monkeypatch.setattr(queries.facts, "PART_SESSIONS", 1)
    assert FactsKeeper(client).refresh() == 4  # the first refresh, one session a part
    assert _cached_slices(client) == 5
    generations = Generations.of(reader)
    through = queries.marks.mark(reader, generations)
    assert through is not None
    assert not projected_after(reader, generations, through)
    _both_ways(reader, monkeypatch)
    client.command("TRUNCATE TABLE session_slices")
    _both_ways(reader, monkeypatch, every=WHOLE_HOURS)  # from the rollups alone


def test_what_came_after_the_mark_is_read_live_then_cached_once(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = three_calls
    reader, store = Reader(client, pointer_ttl_s=0.0), Store(client)
    keeper = FactsKeeper(client)
    keeper.refresh()
    moving = _session(store, "rules", [_turn("d1", "user", 10, 11, 0)], [0, 1], None)
    _session(store, "rules", [_turn("e1", "user", 20, 21, 0)], [0, 1], None)
    _both_ways(reader, monkeypatch)  # the two new sessions read live
    monkeypatch.setattr(queries.folded, "FOLD_BATCH", 1)
    assert keeper.refresh() >= 2  # a session a fold
    later = _turn("d1", "user", 3_700, 3_701, 5)[1]  # a later version, in the next hour
    store.insert("transcripts", transcript_rows(moving, [later]), generation=1)
    _both_ways(reader, monkeypatch)
    keeper.refresh()
    assert not projected_after(reader, Generations.of(reader), _mark(reader))
    _both_ways(reader, monkeypatch)  # its first hour's slice was emptied: counted once
    assert _cached_slices(client) == 5


def test_a_refresh_after_nothing_was_projected_folds_nothing_and_marks(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = three_calls
    monkeypatch.setattr(queries.facts, "SAFETY", timedelta(0))
    monkeypatch.setattr(queries.folded, "OVERLAP", timedelta(0))
    reader, keeper = Reader(client, pointer_ttl_s=0.0), FactsKeeper(client)
    keeper.refresh()
    first = _mark(reader)
    assert keeper.refresh() == 0
    assert _mark(reader) > first
    _both_ways(reader, monkeypatch)


def test_a_read_that_takes_an_older_mark_reads_as_the_live_tables_do(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader holds a mark for up to a second (``queries.marks.mark``): what the cache took
    in after it is passed over there and folded live, once."""
    client, _ = three_calls
    reader, store, keeper = Reader(client, pointer_ttl_s=0.0), Store(client), FactsKeeper(client)
    keeper.refresh()
    older = _mark(reader)
    _session(store, "rules", [_turn("g1", "user", 30, 31, 0)], [0, 1], None)
    keeper.refresh()
    assert _mark(reader) > older
    monkeypatch.setattr(queries.metrics, "mark", lambda *_: older)
    monkeypatch.setattr(queries.cards, "mark", lambda *_: older)
    _both_ways(reader, monkeypatch)
    listed = list_sessions(reader, SessionFilters(), limit=50)
    monkeypatch.setattr(queries.cards, "mark", lambda *_: None)
    assert listed == list_sessions(reader, SessionFilters(), limit=50)


def test_a_session_is_folded_again_only_for_an_insert_no_refresh_listed(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spans of refreshes overlap by ``SAFETY``; an insert listed once is not folded
    again, but one that lands after a list that should have seen it is."""
    client, sessions = three_calls
    monkeypatch.setattr(queries.facts, "SAFETY", timedelta(hours=1))
    reader, keeper = Reader(client), FactsKeeper(client)
    assert keeper.refresh() == 1  # the whole store
    assert keeper.refresh() == 1  # what was projected in the last hour, listed the first time
    assert keeper.refresh() == 0  # the same, listed before
    client.command(  # a later version of a turn, stamped half an hour ago: it landed late
        "INSERT INTO transcripts_generations SELECT * REPLACE (version + 100 AS version, "
        "duration_ms + 1000 AS duration_ms, now64(3) - INTERVAL 30 MINUTE AS projected_at) "
        "FROM transcripts_generations WHERE session_id = {s:String} AND stopped_at IS NOT NULL "
        "LIMIT 1",
        parameters={"s": sessions[0]},
    )
    assert keeper.refresh() == 1
    for options in OPTIONS:
        with monkeypatch.context() as cached:  # all from the cache: nothing after this mark
            cached.setattr(queries.metrics, "mark", lambda *_: datetime.now(UTC))
            from_cache = _range(reader, 2, options)
        with monkeypatch.context() as live:
            live.setattr(queries.metrics, "mark", lambda *_: None)
            assert from_cache == _range(reader, 2, options), options


def test_a_mark_older_than_the_projected_sessions_kept_is_none_and_the_store_folded_whole(
    three_calls: tuple[Client, list[str]],
) -> None:
    client, _ = three_calls
    reader, keeper = Reader(client, pointer_ttl_s=0.0), FactsKeeper(client)
    keeper.refresh()
    generations = Generations.of(reader)
    stale = datetime.now(UTC) - timedelta(days=PROJECTED_SESSIONS_KEPT_DAYS, minutes=1)
    client.insert(
        "session_facts_marks",
        [[*generations.parameters().values(), stale, datetime.now(UTC)]],
        column_names=[*generations.parameters(), "through", "marked_at"],
    )
    assert _mark(reader) is None
    assert keeper.refresh() == 1  # the whole store, in one part
    assert _mark(reader) is not None


def _mark(reader: Reader) -> Any:
    """The mark as ``reader`` reads it: one that holds nothing (``pointer_ttl_s`` 0) sees each
    refresh's."""
    return queries.marks.mark(reader, Generations.of(reader))


def test_any_versions_split_around_a_refresh_read_the_same(
    clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(clickhouse)
    store.migrate()
    reader = Reader(clickhouse)
    keeper = FactsKeeper(clickhouse)

    @settings(
        max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(stored_versions())
    def agree(rows: list[dict[str, Any]]) -> None:
        session_id = unique_name("s")
        halves = split(rows, [len(rows) // 2])
        for half in halves:
            store.insert("transcripts", transcript_rows(session_id, half), generation=1)
            _both_ways(reader, monkeypatch, hours=48, every=OPTIONS)
            keeper.refresh()
        _both_ways(reader, monkeypatch, hours=48, every=OPTIONS)

    agree()


def test_an_insert_under_way_holds_the_mark_before_it_began(
    three_calls: tuple[Client, list[str]],
    clickhouse_dsn: str,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refresh while an insert is under way marks before the insert's stamp: once landed,
    the insert is read live, not taken for cached. Marking at the clock instead, the cache
    would miss it until its late span (``OVERLAP``) listed it again."""
    client, sessions = three_calls
    reader, keeper = Reader(client, pointer_ttl_s=0.0), FactsKeeper(client)
    keeper.refresh()
    landing = threading.Thread(
        target=connect(clickhouse_dsn, database).command,
        args=(  # a later version of a turn, stamped as the insert begins, landing 2 s later
            "INSERT INTO transcripts_generations SELECT * REPLACE (version + 100 AS version, "
            "duration_ms + 1000 AS duration_ms, now64(3) AS projected_at) "
            "FROM transcripts_generations WHERE session_id = {s:String} "
            "AND stopped_at IS NOT NULL AND sleep(2) = 0 LIMIT 1",
        ),
        kwargs={"parameters": {"s": sessions[0]}},
    )
    landing.start()
    while (
        landing.is_alive()
        and not client.query(
            "SELECT count() FROM system.processes WHERE query LIKE 'INSERT INTO transcripts%'"
        ).result_rows[0][0]
    ):
        time.sleep(0.01)
    assert landing.is_alive(), "the insert ended before it was seen under way"
    keeper.refresh()
    landing.join()
    ((stamped,),) = client.query(
        "SELECT max(projected_at) FROM transcripts_generations WHERE version >= 100"
    ).result_rows
    assert _mark(reader) < stamped
    _both_ways(reader, monkeypatch)
    listed = list_sessions(reader, SessionFilters(), limit=50)
    monkeypatch.setattr(queries.cards, "mark", lambda *_: None)
    assert listed == list_sessions(reader, SessionFilters(), limit=50)


def _folds_of(client: Client, session_id: str) -> int:
    """How many refreshes folded the session: each writes its slices stamped anew."""
    return int(
        client.query(
            "SELECT uniqExact(computed_at) FROM session_slices WHERE session_id = {s:String}",
            parameters={"s": session_id},
        ).result_rows[0][0]
    )


@pytest.mark.parametrize("lands_late", [True, False], ids=["one lands late", "none does"])
def test_after_folding_the_whole_store_a_refresh_folds_again_only_what_landed_late(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch, lands_late: bool
) -> None:
    """The first refresh folds the whole store and marks 8 s ahead; a session written 1 s
    later lands before the mark, after the fold. The next refresh, by another keeper (the
    service's, after a rebuild's warm-up), has a late span (``OVERLAP`` before its own) that
    covers both: it folds the late one, and not again the one written just before the first
    refresh, which the whole store's fold took in. It folded a store loaded within
    ``OVERLAP`` of its first refresh all over again. With none landing late, the late span
    is not listed at all."""
    client, _ = three_calls
    monkeypatch.setattr(queries.facts, "SAFETY", timedelta(seconds=-8))
    monkeypatch.setattr(queries.folded, "OVERLAP", timedelta(seconds=10))
    store = Store(client)
    early = _session(store, "rules", [_turn("e1", "user", 10, 11, 0)], [0, 1], 2)
    FactsKeeper(client).refresh()
    time.sleep(1.1)  # the late one lands in another second
    if lands_late:
        late = _session(store, "rules", [_turn("l1", "user", 20, 21, 0)], [0, 1], 2)
    time.sleep(2.1)  # the next late span reaches past it
    FactsKeeper(client).refresh()
    assert _folds_of(client, early) == 1
    if lands_late:
        assert _folds_of(client, late) == 1
    _both_ways(Reader(client), monkeypatch)


def test_a_keeper_past_its_bound_does_not_fold_again_what_it_let_go(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``REMEMBERED`` (a store catching up), a keeper lets go of the inserts before its
    mark and notes their seconds; the late span that lists them again passes over them. It
    folded all it caught up with a second time."""
    client, _ = three_calls
    monkeypatch.setattr(queries.folded, "REMEMBERED", 1)
    monkeypatch.setattr(queries.folded, "OVERLAP", timedelta(seconds=3))
    store, keeper = Store(client), FactsKeeper(client)
    keeper.refresh()
    time.sleep(1.1)  # in a second of its own
    caught_up = _session(store, "rules", [_turn("c1", "user", 10, 11, 0)], [0, 1], 2)
    keeper.refresh()  # folds it: projected after the mark
    time.sleep(1.1)
    keeper.refresh()  # lets it go: before the mark now
    time.sleep(3.1)  # the late span reaches past it
    keeper.refresh()
    assert _folds_of(client, caught_up) == 1
    _both_ways(Reader(client), monkeypatch)
