"""The named metrics (``queries.metrics``) in the embedded engine: hand-computed sessions give
the figures worked out below; any order and duplication of the stored rows gives the same
figures; the buckets of a range add up to the range; and each session's time and state agree
with its summary (``analytics.session_time`` and ``queries.completeness`` in Python)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import queries.facts
import queries.metrics
from analytics.definitions import LEVELS
from consumers.storage import migrations
from consumers.storage.clickhouse import Store
from consumers.storage.migrations.rollup_sketches import ROLLUP_SKETCHES
from consumers.storage.session_facts import ALL_BOTS, PERCENTILES, ROLLUP_TABLES, quantiles
from queries import Reader
from queries.analytics import latency_figures
from queries.errors import BadQueryError
from queries.facts import FactsKeeper
from queries.marks import Generations, mark
from queries.metrics import metrics
from queries.models import Metrics, RoleFigures, StateCounts
from queries.recording import moment
from queries.sessions import session_detail
from tests.conftest import unique_name
from tests.integration.stored_rows import (
    T0,
    chunk_rows,
    event_rows,
    extents,
    ledger_seqs,
    session_end,
    sketched,
    split,
    stored_versions,
    transcript_rows,
)

pytestmark = pytest.mark.integration
SKETCHES = ROLLUP_SKETCHES[0].version
LATENCIES = [200, 500, 500, 600, 1000]
"""The response latencies of the hand-computed calls (``three_calls``)."""


def _hour(reader: Reader, **options: Any) -> Metrics:
    """The figures of the hour from ``T0``, where the hand-computed calls lie."""
    return metrics(reader, since=T0, until=T0 + timedelta(hours=1), **options)


def _turn(
    turn_id: str, role: str, start_s: float, stop_s: float | None, seq: int, **more: Any
) -> list[dict[str, Any]]:
    """A turn's two versions as the projector stores them: its start, and its stop if any."""
    started = {
        "turn_id": turn_id,
        "role": role,
        "started_at": T0 + timedelta(seconds=start_s),
        "stopped_at": None,
        "complete": False,
        "seq": seq,
        **more,
    }
    if stop_s is None:
        return [started]
    return [
        started,
        started | {"stopped_at": T0 + timedelta(seconds=stop_s), "complete": True, "seq": seq + 1},
    ]


def _session(
    store: Store, bot: str, turns: list[list[dict[str, Any]]], seqs: list[int], events: int | None
) -> str:
    session_id = unique_name("s")
    rows = [version | {"bot_id": bot} for turn in turns for version in turn]
    store.insert("transcripts", transcript_rows(session_id, rows), generation=1)
    end: tuple[int, list[tuple[str, int, int]]] | None = None if events is None else (events, [])
    store.insert("session_events", event_rows(session_id, seqs, end), generation=1)
    return session_id


@pytest.fixture
def three_calls(clickhouse: Client) -> tuple[Client, list[str]]:
    """A: a plain exchange, sealed whole. B (another bot): a barge-in the user's turn
    overlaps by 500 ms, closed by the stop timeout, ended with seq 5 never stored. C: a user
    turn and an assistant turn still open, never ended, weeks old (abandoned)."""
    store = Store(clickhouse)
    store.migrate()
    a = _session(
        store,
        "rules",
        [
            _turn("a1", "user", 0, 1, 0),
            _turn("a2", "assistant", 1.6, 4, 2),  # latency 600
            _turn("a3", "user", 5, 6, 4),
            _turn("a4", "assistant", 6.5, 8, 6),  # latency 500
        ],
        list(range(9)),
        9,
    )
    b = _session(
        store,
        "other",
        [
            _turn("b1", "user", 100, 101, 0),
            _turn("b2", "assistant", 101.5, 103.5, 2, interrupted=True),  # latency 500
            _turn("b3", "user", 103, 104, 4, timed_out=True),  # a barge-in: 500 ms overlap
            _turn("b4", "assistant", 104.2, 105, 6),  # latency 200
        ],
        [0, 1, 2, 3, 4, 6, 7, 8],
        9,
    )
    c = _session(
        store,
        "rules",
        [_turn("c1", "user", 200, 202, 0), _turn("c2", "assistant", 203, None, 2)],  # 1000
        [0, 1, 2],
        None,
    )
    return clickhouse, [a, b, c]


def test_hand_computed_calls_give_their_figures(three_calls: tuple[Client, list[str]]) -> None:
    reader = Reader(three_calls[0])
    (row,) = _hour(reader).rows
    assert row.bucket_start == T0
    assert row.group is None
    assert row.sessions == 3
    assert row.turns == RoleFigures(user=5, assistant=5)
    latencies = row.response_latency_ms
    assert latencies is not None
    assert latencies.count == 5
    assert latencies.p50 == sketched(LATENCIES)
    assert latencies.p99 == sketched(LATENCIES, 0.99)  # 600: rank 3.96 is rounded down
    durations = row.turn_duration_ms
    assert durations.user is not None
    assert (durations.user.count, durations.user.p50) == (5, sketched([1000] * 4 + [2000]))
    assert durations.assistant is not None
    assert durations.assistant.count == 4  # c2 is still open
    assert row.talk_ms == RoleFigures(user=6_000, assistant=6_700)
    assert row.talk_ratio == pytest.approx(6_700 / 6_000)
    assert (row.interruptions, row.interruptions_per_100_assistant_turns) == (1, 20.0)
    assert row.user_stop_timeouts == 1
    assert row.call_ms == 8_000 + 5_000 + 3_000
    assert row.interruptions_per_call_minute == pytest.approx(1 / (16_000 / 60_000))
    assert row.overlap_ms is not None
    assert row.overlap_ms.total == 500
    assert row.silence_ms is not None
    assert row.silence_ms.total == 2_100 + 700 + 1_000
    assert row.completeness == StateCounts(sealed=1, sealed_with_holes=1, abandoned=1, open=0)


def test_a_call_across_the_ranges_start_counts_where_it_began_with_all_its_turns(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """D began 10 s before ``T0``: the hour from ``T0`` counts its assistant turn, with the
    latency from the user turn before ``T0``, but not D, which the hour before counts whole;
    the same through the cache and its rollups as folded live."""
    client = three_calls[0]
    reader = Reader(client)
    across = [_turn("d1", "user", -10, -4, 0), _turn("d2", "assistant", 2, 5, 2)]  # 6000
    _session(Store(client), "rules", across, [0, 1, 2, 3], 4)
    monkeypatch.setattr(queries.facts, "SAFETY", timedelta(0))
    for cached in (False, True):
        if cached:
            FactsKeeper(client).refresh()
        (row,) = _hour(reader).rows
        assert (row.sessions, row.turns) == (3, RoleFigures(user=5, assistant=6))
        assert row.response_latency_ms is not None
        latencies = row.response_latency_ms
        assert (latencies.count, latencies.p50) == (6, sketched([*LATENCIES, 6000]))
        before, after = metrics(
            reader, since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1)
        ).rows
        assert (before.sessions, before.call_ms, before.turns.assistant) == (1, 15_000, 0)
        assert before.silence_ms is not None
        assert before.silence_ms.total == 15_000 - 6_000 - 3_000
        assert (after.sessions, after.turns) == (3, row.turns)


def test_the_states_are_those_of_the_sessions_summaries(
    three_calls: tuple[Client, list[str]],
) -> None:
    client, sessions = three_calls
    reader = Reader(client)
    states = [session_detail(reader, s).summary.completeness.state for s in sessions]
    assert states == ["sealed", "sealed_with_holes", "abandoned"]
    patient = Reader(client, abandoned_after=timedelta(days=365_000))
    (row,) = _hour(patient).rows
    assert row.completeness == StateCounts(sealed=1, sealed_with_holes=1, abandoned=0, open=1)


def test_split_by_bot_and_by_role(three_calls: tuple[Client, list[str]]) -> None:
    reader = Reader(three_calls[0])
    by_bot = {r.group: r for r in _hour(reader, group_by="bot").rows}
    assert set(by_bot) == {"other", "rules"}
    assert (by_bot["other"].sessions, by_bot["rules"].sessions) == (1, 2)
    assert by_bot["other"].overlap_ms is not None
    assert by_bot["other"].overlap_ms.total == 500
    by_role = {r.group: r for r in _hour(reader, group_by="role").rows}
    assert by_role["user"].turns == RoleFigures(user=5, assistant=0)
    assert by_role["assistant"].interruptions == 1
    assert by_role["user"].sessions is None
    assert by_role["user"].completeness is None


def test_minute_buckets_hold_each_call_in_the_minute_it_began(
    three_calls: tuple[Client, list[str]],
) -> None:
    reader = Reader(three_calls[0])
    found = _hour(reader, bucket="minute")
    assert [r.bucket_start - T0 for r in found.rows] == [timedelta(minutes=m) for m in (0, 1, 3)]
    assert [r.sessions for r in found.rows] == [1, 1, 1]
    assert _totals(found) == _totals(_hour(reader))


def test_a_percentile_is_the_value_at_its_rank_within_one_percent(clickhouse: Client) -> None:
    """As ``Percentiles`` documents it, for any values: zero, negative (a clock's skew) and
    hours long ones too."""

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(st.lists(st.integers(-100_000, 10**8) | st.integers(0, 2_000), min_size=1))
    def within(values: list[int]) -> None:
        ((found,),) = clickhouse.query(
            f"SELECT {quantiles()}(x) FROM (SELECT arrayJoin({{values:Array(Int64)}}) AS x)",
            parameters={"values": values},
        ).result_rows
        assert found == [sketched(values, level) for level in LEVELS]

    within()


def test_bad_ranges_are_refused_naming_the_parameter(
    three_calls: tuple[Client, list[str]],
) -> None:
    reader = Reader(three_calls[0])
    with pytest.raises(BadQueryError, match="since"):
        metrics(reader, since=T0, until=T0)
    with pytest.raises(BadQueryError, match="take a wider bucket or a shorter range"):
        metrics(reader, since=T0, until=T0 + timedelta(days=30), bucket="minute")
    with pytest.raises(BadQueryError, match="buckets: take a shorter range"):  # none is wider
        metrics(reader, since=T0, until=T0 + timedelta(days=10_001), bucket="day")


def _totals(found: Metrics) -> dict[str, int]:
    """What adds up over buckets: the counts and sums of every row."""
    totals: dict[str, int] = {}
    for r in found.rows:
        counts = {
            "sessions": r.sessions or 0,
            "user_turns": r.turns.user,
            "assistant_turns": r.turns.assistant,
            "latencies": r.response_latency_ms.count if r.response_latency_ms else 0,
            "talk_user": r.talk_ms.user,
            "talk_assistant": r.talk_ms.assistant,
            "interruptions": r.interruptions,
            "timeouts": r.user_stop_timeouts,
            "call": r.call_ms or 0,
            "overlap": r.overlap_ms.total if r.overlap_ms else 0,
            "silence": r.silence_ms.total if r.silence_ms else 0,
            **(r.completeness.model_dump() if r.completeness else {}),
        }
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
    return totals


def _wide(reader: Reader, **options: Any) -> Metrics:
    """The figures of the two hours around ``T0``, where generated calls lie."""
    return metrics(reader, since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1), **options)


def test_any_order_and_duplication_gives_the_same_figures_and_buckets_add_up(
    clickhouse: Client,
) -> None:
    store = Store(clickhouse)
    store.migrate()
    reader = Reader(clickhouse)

    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        st.lists(stored_versions(), min_size=1, max_size=4),
        st.lists(st.integers(0, 100), max_size=4),
        st.randoms(use_true_random=False),
    )
    def same(sessions: list[list[dict[str, Any]]], cuts: list[int], rng: Any) -> None:
        once, shuffled = unique_name("bot"), unique_name("bot")
        for rows in sessions:
            store.insert(
                "transcripts",
                transcript_rows(unique_name("s"), [r | {"bot_id": once} for r in rows]),
                generation=1,
            )
            again = [r | {"bot_id": shuffled} for r in rows + rng.sample(rows, len(rows) // 2)]
            rng.shuffle(again)
            session_id = unique_name("s")
            for part in split(again, cuts):
                store.insert("transcripts", transcript_rows(session_id, part), generation=1)
        expected, found = (_wide(reader, bucket="minute", bot_id=bot) for bot in (once, shuffled))
        assert found.rows == expected.rows
        assert _totals(found) == _totals(_wide(reader, bucket="day", bot_id=shuffled))

    same()


def test_a_calls_time_and_state_are_those_of_its_summary(clickhouse: Client) -> None:
    store = Store(clickhouse)
    store.migrate()
    reader = Reader(clickhouse)

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        stored_versions() | st.just([]),
        ledger_seqs,
        session_end,
        st.lists(extents, max_size=12),
    )
    def agree(
        rows: list[dict[str, Any]],
        seqs: list[int],
        end: tuple[int, list[tuple[str, int, int]]] | None,
        chunks: list[Any],
    ) -> None:
        assume(rows or seqs or end)  # a call nobody spoke in is a session by its events
        bot, session_id = unique_name("bot"), unique_name("s")
        if rows:
            store.insert(
                "transcripts",
                transcript_rows(session_id, [r | {"bot_id": bot} for r in rows]),
                generation=1,
            )
        if chunks:
            store.insert("audio_chunks", chunk_rows(session_id, chunks), generation=1)
        if seqs:
            store.insert("session_events", event_rows(session_id, seqs, bot_id=bot), generation=1)
        if end is not None:
            store.insert(
                "session_events",
                event_rows(session_id, [max(seqs, default=0) + 1], end, bot_id=bot),
                generation=1,
            )
        summary = session_detail(reader, session_id).summary
        (row,) = _wide(reader, bucket="day", bot_id=bot).rows
        assert row.completeness is not None
        assert row.overlap_ms is not None
        assert row.silence_ms is not None
        assert row.completeness.model_dump()[summary.completeness.state] == 1
        assert (row.call_ms, row.overlap_ms.total, row.silence_ms.total) == (
            summary.call_ms,
            summary.overlap_ms,
            summary.silence_ms,
        )

    agree()


def test_a_call_that_ended_with_a_turn_still_open_has_holes(clickhouse: Client) -> None:
    """Every event it declared is stored: only the turn that never stopped is missing."""
    store = Store(clickhouse)
    store.migrate()
    turns = [_turn("u", "user", 0, 1, 0), _turn("a", "assistant", 2, None, 2)]
    session_id = _session(store, "rules", turns, [0, 1, 2, 3], 4)
    reader = Reader(clickhouse)
    assert session_detail(reader, session_id).summary.completeness.state == "sealed_with_holes"
    (row,) = _hour(reader).rows
    assert row.completeness == StateCounts(sealed=0, sealed_with_holes=1, abandoned=0, open=0)


def test_the_latency_route_counts_a_latency_whose_user_turn_lies_before_the_range(
    three_calls: tuple[Client, list[str]],
) -> None:
    """As the analytics count it: a2 starts in the range, the user turn before it does not.
    Version 1 of the latency route left it out, while ``/v1/analytics`` counted it."""
    reader = Reader(three_calls[0])
    since, until = T0 + timedelta(seconds=1.5), T0 + timedelta(hours=1)
    figures = latency_figures(reader, since=since, until=until).response_latency_ms
    assert figures is not None
    assert (figures.count, figures.p50) == (5, sketched(LATENCIES))
    one_bot = latency_figures(reader, since=since, until=until, bot_id="rules")
    assert one_bot.response_latency_ms is not None
    assert one_bot.response_latency_ms.count == 3  # 600, 500, 1000


def test_a_bucket_where_a_call_goes_on_counts_no_session_and_roles_have_no_ratio(
    three_calls: tuple[Client, list[str]],
) -> None:
    """A call begun in minute 0 speaks on in minute 1, where it is interrupted: that minute
    counts its turns and 0 sessions, 0 ms of call (they were null). Split by role, a row holds one
    role's talk: a ratio between the two has no meaning (version 1 gave the user's row 0)."""
    client, _ = three_calls
    _session(
        Store(client),
        "cross",
        [_turn("x1", "user", 50, 52, 0), _turn("x2", "assistant", 65, 66, 2, interrupted=True)],
        [0, 1, 2, 3],
        4,
    )
    reader = Reader(client)
    first, second = _hour(reader, bucket="minute", bot_id="cross").rows
    assert (first.sessions, second.sessions, second.call_ms) == (1, 0, 0)
    assert second.turns == RoleFigures(user=0, assistant=1)
    # the call's interruption, in minute 1, is its own: per minute of its call, in minute 0
    # (version 2 gave minute 0 a rate of 0, minute 1 none)
    assert (first.interruptions, second.interruptions) == (0, 1)
    assert first.interruptions_per_call_minute == pytest.approx(1 / (16_000 / 60_000))
    assert second.interruptions_per_call_minute is None
    assert second.completeness == StateCounts(**dict.fromkeys(StateCounts.model_fields, 0))
    by_role = _hour(reader, group_by="role").rows
    assert [r.group for r in by_role] == ["assistant", "user"]
    assert [r.talk_ratio for r in by_role] == [None, None]


def test_a_turn_never_stopped_is_under_way_up_to_the_last_moment_known_of_its_call(
    three_calls: tuple[Client, list[str]],
) -> None:
    """C's assistant turn started at 3 s into the call and never stopped; the call was
    abandoned. A day later it was still listed as being said."""
    client, (_, _, c) = three_calls
    reader = Reader(client)
    assert [t.turn_id for t in moment(reader, c, 3_000).turns] == ["c2"]
    assert moment(reader, c, 3_001).turns == []
    assert moment(reader, c, 86_400_000).turns == []


def test_a_store_made_before_migration_113_folds_each_call_s_interruptions_once_migrated(
    clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its slices and rollups got the new columns by ``ALTER TABLE``, last, where the
    refresh, which inserts by position, puts them."""
    with monkeypatch.context() as old:
        old.setattr(
            migrations, "MIGRATIONS", tuple(m for m in migrations.MIGRATIONS if m.version <= 112)
        )
        Store(clickhouse).migrate()
    assert [m.version for m in migrations.migrate(clickhouse)] == [
        m.version for m in migrations.MIGRATIONS if m.version >= 113
    ]
    monkeypatch.setattr(queries.facts, "SAFETY", timedelta(0))
    session_id = _session(
        Store(clickhouse),
        "cross",
        [_turn("x1", "user", 50, 52, 0), _turn("x2", "assistant", 65, 66, 2, interrupted=True)],
        [0, 1, 2, 3],
        4,
    )
    FactsKeeper(clickhouse).refresh()
    folded = clickhouse.query(
        "SELECT (SELECT session_interruptions FROM session_slices FINAL WHERE session_id = "
        "{s:String} AND opens), (SELECT interruptions_in_sessions FROM session_rollups FINAL)",
        parameters={"s": session_id},
    ).result_rows
    assert folded == [(1, 1)]
    (row,) = _hour(Reader(clickhouse)).rows
    assert row.interruptions_per_call_minute == pytest.approx(1 / (16_000 / 60_000))


def test_a_store_made_before_migration_120_is_folded_again_into_sketches(
    three_calls: tuple[Client, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its rollups held samples (``quantiles``), which no sketch merges with: they are made
    again, the mark goes, and the next refresh fills them and the rollups of all bots."""
    client, _ = three_calls
    for table, sql in ROLLUP_TABLES.items():
        client.command(f"DROP TABLE {table}")
        client.command(sql.replace("quantilesDD(0.01, ", "quantiles("))
    client.command(f"DELETE FROM schema_migrations WHERE version >= {SKETCHES}")
    monkeypatch.setattr(queries.facts, "SAFETY", timedelta(0))
    generations = Generations.of(Reader(client))
    now = datetime.now(UTC)
    client.insert(  # the mark of a refresh before the migration
        "session_facts_marks",
        [[*generations.parameters().values(), now, now]],
        column_names=[*generations.parameters(), "through", "marked_at"],
    )
    assert mark(Reader(client), generations) is not None
    applied = [m.version for m in migrations.migrate(client)]
    assert applied == [m.version for m in migrations.MIGRATIONS if m.version >= SKETCHES]
    assert mark(Reader(client), generations) is None
    FactsKeeper(client).refresh()
    reader = Reader(client)
    assert mark(reader, generations) is not None
    kinds = client.query(
        "SELECT DISTINCT type FROM system.columns WHERE database = currentDatabase() "
        "AND name IN ('durations', 'latencies', 'overlaps', 'silences')"
    ).result_rows
    assert kinds == [(PERCENTILES,)]
    by_hour = f"SELECT count() FROM {ALL_BOTS['turn_rollups']} FINAL WHERE hour = {{t:DateTime}}"
    assert client.query(by_hour, parameters={"t": T0}).result_rows == [(2,)]  # a row per role
    cached = _hour(reader)
    with monkeypatch.context() as live:
        live.setattr(queries.metrics, "mark", lambda *_: None)
        assert cached == _hour(reader)
