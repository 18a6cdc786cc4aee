"""Sealed sessions on the real engine: a session's end against what the store holds of it.

Completeness is the same for any order, duplication and batching of a session's events; the
engine tells each kind of chunk hole; abandoned sessions are told by their silence; and the
whole path runs from a bot's producer through the broker to the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.projections import project
from consumers.storage import migrations
from consumers.storage.clickhouse import Store
from producers import TranscriptProducer
from producers.simulator import simulate
from queries import Reader
from queries.incomplete import incomplete_sessions
from queries.models import Completeness
from queries.sessions import session_detail
from queries.summaries import summaries
from schemas import SessionEnded, Topics, Track
from schemas.models import Event
from tests.conftest import unique_name
from tests.events import T0, chunk, ended, turn_pair
from tests.frames import decoded
from tests.integration.api_support import conversation, live_api, now
from tests.integration.stored_rows import T0 as ROWS_T0
from tests.integration.stored_rows import Extent, chunk_rows, event_rows, transcript_rows

pytestmark = pytest.mark.integration

TRACKS: tuple[Track, ...] = ("user", "assistant")


@dataclass(frozen=True)
class Call:
    """A call's shape: its turns, and per track the lengths of its chunks and where a new
    recording segment starts (a chunk index)."""

    turns: int
    chunks: dict[Track, list[int]]
    segment_at: int

    def events(self, session_id: str) -> list[Event]:
        found: list[Event] = []
        for n in range(self.turns):
            found += turn_pair(session_id, f"turn-{n}", seq=len(found))
        totals: dict[str, int] = {}
        for track, lengths in self.chunks.items():
            start = 0
            for n, length in enumerate(lengths):
                if n == self.segment_at:
                    start = 0
                found.append(
                    chunk(
                        len(found),
                        session_id,
                        chunk_id=f"{track}-{n}",
                        track=track,
                        chunk_seq=n,
                        start_sample=start,
                        num_samples=length,
                        recording_started_at=T0 + timedelta(minutes=int(n >= self.segment_at)),
                    )
                )
                start += length
            totals |= {f"{track}_chunks": len(lengths), f"{track}_samples": sum(lengths)}
        return [*found, ended(len(found), session_id, totals=totals)]


calls = st.builds(
    Call,
    turns=st.integers(1, 3),
    chunks=st.fixed_dictionaries({t: st.lists(st.integers(1, 2_000), max_size=4) for t in TRACKS}),
    segment_at=st.integers(1, 4),
)


def _store(clickhouse: Client) -> tuple[Store, Reader]:
    store = Store(clickhouse)
    store.migrate()
    return store, Reader(clickhouse)


def _write(store: Store, events: Sequence[Event]) -> None:
    """The events as one projector batch: decoded, projected and inserted table by table."""
    for table, rows in project(decoded(events).frames).items():
        store.insert(table, rows, generation=1)


def _completeness(reader: Reader, session_id: str) -> Completeness:
    """Read both ways: the session in full, and its summary row, which only sessions with a
    turn have (the listing's; a call whose every turn was lost is answered by id alone)."""
    detail = session_detail(reader, session_id)
    listed = summaries(reader, [session_id])
    assert listed == ([detail.summary] if detail.turns else []), "row and sources disagree"
    return detail.summary.completeness


def test_any_order_duplication_and_batching_of_a_sessions_events_gives_one_completeness(
    clickhouse: Client,
) -> None:
    store, reader = _store(clickhouse)

    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(calls, st.data(), st.randoms(use_true_random=False))
    def same(call: Call, data: st.DataObject, rng: Any) -> None:
        shuffled, reference = unique_name("s"), unique_name("r")
        events = call.events(shuffled)
        lost = set(data.draw(st.sets(st.sampled_from(range(len(events))), max_size=2)))
        kept = [e for n, e in enumerate(events) if n not in lost]
        stream = kept + [rng.choice(kept) for _ in range(rng.randint(0, 4))]
        rng.shuffle(stream)
        cuts = sorted(rng.sample(range(len(stream) + 1), k=min(3, len(stream) + 1)))
        for a, b in pairwise([0, *cuts, len(stream)]):
            if a < b:
                _write(store, stream[a:b])
        _write(store, [e for n, e in enumerate(call.events(reference)) if n not in lost])

        found = _completeness(reader, shuffled)
        assert found == _completeness(reader, reference)
        if not lost:
            assert (found.state, found.complete, found.holes) == ("sealed", True, [])

    same()


@pytest.mark.parametrize(
    ("extents", "declared", "holes"),
    [
        ([("user", 0, 0, 0, 100), ("user", 1, 0, 100, 100)], (2, 200), []),
        ([("user", 0, 0, 0, 100), ("user", 1, 1, 0, 100)], (2, 200), []),
        ([("user", 0, 0, 0, 100), ("user", 1, 0, 150, 50)], (2, 150), ["sample_gaps"]),
        ([("user", 0, 0, 50, 100), ("user", 1, 0, 150, 50)], (2, 150), ["sample_gaps"]),
        ([("user", 0, 0, 0, 100), ("user", 1, 0, 50, 150)], (2, 250), ["sample_overlaps"]),
        ([("user", 0, 0, 0, 100)], (2, 200), ["missing_chunks"]),
        ([("user", 0, 0, 0, 100), ("user", 1, 0, 100, 100)], (1, 100), ["extra_chunks"]),
        ([("user", 0, 0, 0, 100), ("user", 1, 0, 100, 50)], (2, 200), ["sample_count"]),
        ([("user", 0, 0, 0, 100), ("user", 1, 0, 100, 100), ("user", 1, 0, 100, 50)], (2, 150), []),
    ],
    ids=[
        "whole",
        "two segments",
        "gap",
        "late first chunk",
        "overlap",
        "missing chunk",
        "extra chunk",
        "sample count",
        "latest version of a chunk",
    ],
)
def test_the_engine_tells_each_kind_of_chunk_hole_of_an_ended_session(
    clickhouse: Client, extents: list[Extent], declared: tuple[int, int], holes: list[str]
) -> None:
    store, reader = _store(clickhouse)
    session_id = unique_name("s")
    turn = {"turn_id": "t", "role": "user", "started_at": T0, "stopped_at": T0, "complete": True}
    store.insert("transcripts", transcript_rows(session_id, [turn | {"seq": 0}]), generation=1)
    for n, extent in enumerate(extents):  # one insert each, a later version with a later seq
        store.insert("audio_chunks", chunk_rows(session_id, [extent], seq=n), generation=1)
    end = (3, [("user", *declared)])
    store.insert("session_events", event_rows(session_id, [0, 1, 2], end), generation=1)

    found = _completeness(reader, session_id)
    assert (found.state, found.holes) == ("sealed_with_holes" if holes else "sealed", holes)
    listed = {s.session_id: s for s in incomplete_sessions(reader, limit=500).items}
    assert (session_id in listed) == bool(holes)
    if holes:
        assert listed[session_id].completeness.holes == holes


def test_a_session_silent_for_longer_than_the_setting_without_an_end_is_abandoned(
    clickhouse: Client,
) -> None:
    store, _ = _store(clickhouse)
    silent, sealed = unique_name("silent"), unique_name("sealed")
    turn = {"turn_id": "t", "role": "user", "started_at": T0, "stopped_at": T0, "complete": True}
    for session_id in (silent, sealed):
        store.insert("transcripts", transcript_rows(session_id, [turn | {"seq": 0}]), generation=1)
    store.insert("session_events", event_rows(silent, [0]), generation=1)
    store.insert("session_events", event_rows(sealed, [0, 1], (2, [])), generation=1)

    patient = Reader(clickhouse, abandoned_after=timedelta(days=365_000))
    impatient = Reader(clickhouse, abandoned_after=timedelta(minutes=10))  # T0 is days ago
    assert [_completeness(r, silent).state for r in (patient, impatient)] == ["open", "abandoned"]
    assert [_completeness(r, sealed).state for r in (patient, impatient)] == ["sealed"] * 2

    def listed(reader: Reader) -> dict[str, Completeness]:
        page = incomplete_sessions(reader, limit=500)
        return {
            s.session_id: s.completeness for s in page.items if s.session_id in (silent, sealed)
        }

    assert listed(patient) == {}
    abandoned = listed(impatient)
    assert list(abandoned) == [silent]
    assert (abandoned[silent].state, abandoned[silent].last_seen_at) == ("abandoned", T0)
    assert abandoned[silent] == _completeness(impatient, silent), "its turn is its latest sign"


def test_the_incomplete_listing_tells_a_session_as_its_summary_does(clickhouse: Client) -> None:
    """The listing finds sessions by their ledger; a summary also takes the session's turns:
    a turn later than the ledger's last event (clocks apart, or a ledger behind) keeps a
    session open, and a turn numbered past the ledger's last event counts the events before
    it as missing. Both answers tell each session the same way."""
    store, _ = _store(clickhouse)
    spoke_lately, numbered_past = unique_name("spoke-lately"), unique_name("numbered-past")
    turn = {"turn_id": "t", "role": "user", "started_at": ROWS_T0, "complete": True}
    lately = turn | {"stopped_at": now(), "seq": 0}
    store.insert("transcripts", transcript_rows(spoke_lately, [lately]), generation=1)
    store.insert("session_events", event_rows(spoke_lately, [0]), generation=1)
    past = turn | {"stopped_at": ROWS_T0, "seq": 3}
    store.insert("transcripts", transcript_rows(numbered_past, [past]), generation=1)
    store.insert("session_events", event_rows(numbered_past, [0, 1]), generation=1)

    reader = Reader(clickhouse, abandoned_after=timedelta(minutes=10))
    listed = {
        s.session_id: s
        for s in incomplete_sessions(reader, limit=500).items
        if s.session_id in (spoke_lately, numbered_past)
    }
    assert _completeness(reader, spoke_lately).state == "open"
    assert list(listed) == [numbered_past]
    item = listed[numbered_past]
    assert item.completeness == _completeness(reader, numbered_past)
    assert (item.completeness.state, item.completeness.missing) == ("abandoned", 2)
    assert item.missing_seqs == [2, 3]


async def test_sealed_sessions_through_the_broker_and_the_api(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str, tmp_path: Path
) -> None:
    """A simulated call with audio ends sealed; a call whose end declares a chunk that never
    came is sealed with holes; one that never ends and falls silent is abandoned."""
    from audio.stores import open_chunk_store

    at = now() - timedelta(hours=1)
    holey = [
        *conversation("holey", at, turns=2),
        chunk(4, "holey", recording_started_at=at),
        ended(5, "holey", bot_id="api-bot", totals={"user_chunks": 2, "user_samples": 32_000}),
    ]
    silent = conversation("silent", at, turns=2)
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        async with TranscriptProducer(
            kafka_bootstrap, bot_id="sim", topics=topics, spool_dir=tmp_path / "spool"
        ) as producer:
            (simulated,) = await simulate(
                producer,
                sessions=1,
                rate=0,
                turns=6,
                seed=5,
                chunks=open_chunk_store(str(tmp_path / "chunks")),
            )
        api.published += producer.stats.published
        await api.publish([*holey, *silent])
        await api.until_projected()

        listing = await api.ok("/v1/sessions", limit=500)
        states = {s["session_id"]: s["completeness"]["state"] for s in listing["items"]}
        assert states == {
            simulated: "sealed",
            "holey": "sealed_with_holes",
            "silent": "abandoned",
        }
        sealed = await api.ok("/v1/sessions", state="sealed")
        assert [s["session_id"] for s in sealed["items"]] == [simulated]

        detail = (await api.ok(f"/v1/sessions/{simulated}"))["summary"]["completeness"]
        assert (detail["state"], detail["complete"], detail["holes"]) == ("sealed", True, [])
        assert detail["events"] == detail["expected"] > 0
        assert [t["track"] for t in detail["tracks"]] == ["user", "assistant"]
        assert all(t["chunks"] == t["expected_chunks"] > 0 for t in detail["tracks"])

        incomplete = await api.ok("/v1/incomplete")
        by_id = {s["session_id"]: s["completeness"] for s in incomplete["items"]}
        assert set(by_id) == {"holey", "silent"}
        assert by_id["holey"]["holes"] == ["missing_chunks"]
        assert by_id["holey"]["tracks"] == [
            {
                "track": "user",
                "chunks": 1,
                "samples": 16_000,
                "gaps": 0,
                "overlaps": 0,
                "expected_chunks": 2,
                "expected_samples": 32_000,
            }
        ]
        assert (by_id["silent"]["state"], by_id["silent"]["holes"]) == ("abandoned", [])
        for bot_id in {s["bot_id"] for s in incomplete["items"]} | {"sim"}:
            of_bot = await api.ok("/v1/incomplete", bot_id=bot_id)
            assert [s["session_id"] for s in of_bot["items"]] == [
                s["session_id"] for s in incomplete["items"] if s["bot_id"] == bot_id
            ]


def test_an_end_that_arrives_before_the_rest_of_its_session_seals_it_once_all_is_there(
    clickhouse: Client,
) -> None:
    """The end travels on the turns' topic and the chunks on their own: either may be
    projected first."""
    store, reader = _store(clickhouse)
    session_id = unique_name("s")
    events = Call(turns=1, chunks={"user": [800, 800], "assistant": []}, segment_at=4).events(
        session_id
    )
    *before, end = events
    assert isinstance(end, SessionEnded)
    _write(store, [before[0], end])
    early = _completeness(reader, session_id)
    assert early.state == "sealed_with_holes"
    assert early.holes == ["missing_events", "open_turns", "missing_chunks"]
    _write(store, before[1:3])
    assert _completeness(reader, session_id).holes == ["missing_events", "missing_chunks"]
    _write(store, [*before, end])  # and a replay changes nothing
    assert _completeness(reader, session_id).state == "sealed"
    stray = chunk(9, session_id, chunk_id="late", chunk_seq=7, start_sample=1_600)
    _write(store, [stray])
    assert _completeness(reader, session_id).holes == ["missing_events", "extra_chunks"]


def test_a_store_migrated_before_the_seals_had_a_table_of_their_own_keeps_its_seals(
    clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migrations 35-39 kept the sealing sets in the summary rows; 40-47 move them to
    ``session_seals_generations``, filled again from the ledger and the chunks."""
    monkeypatch.setattr(
        migrations, "MIGRATIONS", tuple(m for m in migrations.MIGRATIONS if m.version <= 39)
    )
    store, reader = _store(clickhouse)
    call = Call(turns=2, chunks={"user": [100, 50]}, segment_at=1)
    old, new = unique_name("old"), unique_name("new")
    _write(store, call.events(old))
    monkeypatch.undo()

    later = [m.version for m in migrations.MIGRATIONS if m.version > 39]
    assert [m.version for m in migrations.migrate(clickhouse)] == later
    _write(store, call.events(new))
    found = _completeness(reader, old)
    assert found == _completeness(reader, new)
    assert (found.state, [(t.chunks, t.samples) for t in found.tracks]) == ("sealed", [(2, 150)])
    summary_columns = reader.rows(
        "SELECT name FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'session_summaries_generations'"
    )
    assert {c for (c,) in summary_columns} == {
        "generation",
        "session_id",
        "turns",
        "seqs",
        "last_seq",
    }


def test_a_walk_of_short_pages_lists_every_incomplete_session_once_in_order(
    clickhouse: Client,
) -> None:
    """A page examines sessions in spans and ends when its time is spent, with a cursor from
    where it stopped: pages may be short or empty, and the walk still lists each incomplete
    session once, as one long page does; with a bot filter, each of that bot's alone."""
    store, _ = _store(clickhouse)
    turn = {"turn_id": "t", "role": "user", "started_at": T0, "stopped_at": T0, "complete": True}
    kinds = ["sealed", "seq hole", "sealed", "sealed", "open turn", "chunk hole", "sealed"] * 2
    bots = {f"walk-{n:02d}": "other" if n % 3 == 0 else "rules" for n in range(len(kinds))}
    for n, kind in enumerate(kinds):
        session_id = f"walk-{n:02d}"
        stopped = turn | {"seq": 0, "complete": kind != "open turn"}
        store.insert("transcripts", transcript_rows(session_id, [stopped]), generation=1)
        store.insert("audio_chunks", chunk_rows(session_id, [("user", 0, 0, 0, 100)]), generation=1)
        seqs = [0, 2, 3] if kind == "seq hole" else [0, 1, 2]
        declared = [("user", 1, 90 if kind == "chunk hole" else 100)]
        ledger = event_rows(session_id, seqs, (seqs[-1] + 1, declared), bot_id=bots[session_id])
        store.insert("session_events", ledger, generation=1)
    reader = Reader(clickhouse, abandoned_after=timedelta(days=365_000))
    expected = [f"walk-{n:02d}" for n, kind in enumerate(kinds) if kind != "sealed"]
    assert [s.session_id for s in incomplete_sessions(reader, limit=500).items] == expected

    for bot_id, limit, span in ((None, 2, 2), (None, 1, 3), ("other", 1, 2), ("rules", 2, 3)):
        # a span with more than a page: a full page stops
        walked: list[str] = []
        short, cursor = 0, None
        while True:
            page = incomplete_sessions(
                reader, cursor=cursor, limit=limit, bot_id=bot_id, span=span, budget_s=0
            )
            walked += [s.session_id for s in page.items]
            assert all(s.bot_id == bot_id for s in page.items if bot_id is not None)
            if (cursor := page.next_cursor) is None:
                break
            short += len(page.items) < limit
        assert walked == [s for s in expected if bot_id in (None, bots[s])], (bot_id, limit, span)
        assert short or limit == 1, "pages end short when their time is spent"


def test_a_bot_filter_finds_the_bots_sessions_behind_more_than_a_page_of_another_bots(
    clickhouse: Client,
) -> None:
    """The filter is inside each search: after them, a search that stopped at its limit on
    another bot's sessions hid the bot's after them, and the page said none were left."""
    store, _ = _store(clickhouse)
    turn = {"turn_id": "t", "role": "user", "started_at": T0, "stopped_at": T0, "complete": True}
    bots = {"holes-a": "rules", "holes-b": "rules", "holes-c": "other"}
    for session_id, bot_id in bots.items():
        store.insert("transcripts", transcript_rows(session_id, [turn | {"seq": 0}]), generation=1)
        ledger = event_rows(session_id, [0, 2, 3], (4, []), bot_id=bot_id)
        store.insert("session_events", ledger, generation=1)
    reader = Reader(clickhouse, abandoned_after=timedelta(days=365_000))
    page = incomplete_sessions(reader, limit=1, bot_id="other")
    assert ([s.session_id for s in page.items], page.next_cursor) == (["holes-c"], None)
    assert [s.session_id for s in incomplete_sessions(reader, bot_id="").items] == list(bots)
