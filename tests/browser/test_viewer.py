"""The viewer in Debian's chromium, against the real service: a broker, live projectors into
the embedded engine, and simulated calls with both tracks recorded as WAV chunks."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.async_api import Browser, Page, expect

from audio.stores import open_chunk_store
from producers.simulator import SimulatedTurn, script_call
from schemas import Role, Topics
from schemas.models import ChunkReady, Event
from tests.browser.conftest import screenshot
from tests.integration.api_support import Api, conversation, live_api, now
from tests.integration.audio_support import recorded_call

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 2 * HOUR
CALLS = (
    ("rooms/7 support", "bot-a", script_call(random.Random(1), 6), T0 + timedelta(minutes=5)),
    ("call-b", "bot-b", script_call(random.Random(2), 8), T0 + timedelta(minutes=20)),
    ("call-c", "bot-a", script_call(random.Random(3), 8), T0 + timedelta(minutes=70)),
)
"""Three calls of two bots in two hours; the first (its id holds '/' and a space) has a
barge-in."""


@dataclass
class Viewer:
    api: Api
    url: str

    def at(self, fragment: str) -> str:
        return f"{self.url}/#{fragment}"


@pytest.fixture
async def viewer(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str, tmp_path: Path
) -> AsyncIterator[Viewer]:
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        store = open_chunk_store(tmp_path.as_uri())
        events: list[Event] = []
        for session_id, bot_id, script, started in CALLS:
            events += [
                e.model_copy(update={"bot_id": bot_id})
                for e in recorded_call(session_id, started, script, store)
            ]
        await api.publish(events)
        await api.until_projected()
        yield Viewer(api, str(api.http.base_url).rstrip("/"))


def _shown(value: float | None, unit: str = "") -> str:
    """A number as the page shows it: grouped thousands, at most one decimal."""
    if value is None:
        return "\N{EN DASH}"
    text = f"{value:,.1f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".rstrip()


REFRESH_S = 3.0
"""The page's ``WAVEFORM_REFRESH_MS``: a live call's waveform is drawn anew at most this often."""


def _chunk_start_s(chunk: ChunkReady, began: datetime) -> float:
    at = chunk.recording_started_at + timedelta(seconds=chunk.start_sample / chunk.sample_rate)
    return (at - began).total_seconds()


def _from_ms(url: str, drawn: list[int]) -> None:
    """Notes the window's start of a request for the session's recording."""
    if "/audio?" in url and "/turns/" not in url:
        drawn.append(int(parse_qs(urlsplit(url).query)["from_ms"][0]))


async def _stray_text(page: Page) -> list[str]:
    """Text the page put between its blocks: what a page appending a null shows ('null')."""
    return list(
        await page.evaluate(
            "[...document.getElementById('page').childNodes]"
            ".filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent)"
        )
    )


def _turn_id(turn: SimulatedTurn) -> str:
    return f"{turn.role}-{turn.index}"


LONG_CALL = [
    replace(t, start_s=t.start_s + shift, end_s=t.end_s + shift)
    for t, shift in zip(script_call(random.Random(5), 6), [0, 0, 0, 0, 300, 660], strict=True)
]
"""A call of 11 minutes: four turns at its start, one at 5 minutes, one past 10."""
CHUNK_S = 20.0


def _silent_chunks(script: list[SimulatedTurn]) -> frozenset[tuple[Role, int]]:
    """The chunks (of ``CHUNK_S``) in which their speaker says nothing: left out, so that a
    long call's audio costs only its turns."""
    chunks = math.ceil((script[-1].end_s + 0.5) / CHUNK_S)
    said = {
        (t.role, n)
        for t in script
        for n in range(int(t.start_s // CHUNK_S), int(t.end_s // CHUNK_S) + 1)
    }
    roles: tuple[Role, ...] = ("user", "assistant")
    return frozenset((r, n) for r in roles for n in range(chunks) if (r, n) not in said)


async def _publish_recorded(
    api: Api, session_id: str, began: datetime, script: list[SimulatedTurn], folder: Path
) -> None:
    chunk_s: dict[Role, float] = {"user": CHUNK_S, "assistant": CHUNK_S}
    store = open_chunk_store(folder.as_uri())
    skip = _silent_chunks(script)
    await api.publish(recorded_call(session_id, began, script, store, chunk_s=chunk_s, skip=skip))
    await api.until_projected()


async def _lined_up(page: Page, turn: SimulatedTurn) -> None:
    """The turn's region on the waveform starts where its bar starts on the timeline (a
    short bar is wider than its turn: its padding)."""
    turn_id = _turn_id(turn)
    bar = await page.locator(f".lane-{turn.role} .turn[data-turn-id='{turn_id}']").bounding_box()
    region = page.locator(f"[part~='{turn_id}']")
    await expect(region).to_have_count(1, timeout=20_000)
    drawn = await region.bounding_box()
    assert bar is not None
    assert drawn is not None
    assert abs(drawn["x"] - bar["x"]) < 2, (turn_id, drawn, bar)


async def test_the_list_shows_the_sessions_newest_first(viewer: Viewer, page: Page) -> None:
    listed = await viewer.api.ok("/v1/sessions")
    await page.goto(viewer.at("/"))
    rows = page.locator("table.sessions tbody tr")
    await expect(rows).to_have_count(len(CALLS))
    # A browser that shows tabs asks for /favicon.ico unless the page names its icon.
    icon = "fetch(document.querySelector('link[rel=icon]').href).then((r) => r.ok)"
    assert await page.evaluate(icon) is True
    assert await _stray_text(page) == []
    assert [await r.get_attribute("data-session-id") for r in await rows.all()] == [
        s["session_id"] for s in listed["items"]
    ]
    await expect(rows.first).to_contain_text("call-c")
    await screenshot(page, "sessions")
    await page.select_option("select[name=has_interruption]", "true")
    await page.click(".filters button[type=submit]")
    interrupted = await viewer.api.ok("/v1/sessions", has_interruption="true")
    await expect(rows).to_have_count(len(interrupted["items"]))


async def test_a_session_page_shows_each_turn_in_its_lane_and_plays_a_clicked_turn(
    viewer: Viewer, page: Page
) -> None:
    session_id, _, script, _ = CALLS[0]
    detail = await viewer.api.ok(f"/v1/sessions/{quote(session_id, safe='')}")
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await expect(page.locator("h1")).to_contain_text(session_id)
    for turn in detail["turns"]:
        bar = page.locator(f".lane-{turn['role']} .turn[data-turn-id='{turn['turn_id']}']")
        await expect(bar).to_have_text(turn["text"])
        other = "assistant" if turn["role"] == "user" else "user"
        await expect(
            page.locator(f".lane-{other} [data-turn-id='{turn['turn_id']}']")
        ).to_have_count(0)
    latencies = [t["response_latency_ms"] for t in detail["turns"] if t["response_latency_ms"]]
    labels = page.locator(".lane-gaps .gap .label")
    await expect(labels).to_have_text([_shown(ms, "ms") for ms in latencies])
    barged = [_turn_id(t) for t in script if t.interrupted]
    assert barged, "the script has no barge-in"
    for turn_id in barged:
        await expect(page.locator(f".turn.interrupted[data-turn-id='{turn_id}']")).to_have_count(1)
    await expect(page.locator(".lane-assistant .mark.interrupted")).to_have_count(len(barged))
    await expect(page.locator(".wave-controls")).to_be_visible(timeout=20_000)
    await expect(page.locator("[part='regions-container'] > div")).to_have_count(len(script))

    longest = max(script, key=lambda t: t.end_s - t.start_s)
    turn_id = _turn_id(longest)
    async with page.expect_request(lambda r: "/turns/" in r.url) as requested:
        await page.click(f".lane-{longest.role} .turn[data-turn-id='{turn_id}']")
    assert (await requested.value).url == (
        f"{viewer.url}/v1/sessions/{quote(session_id, safe='')}/turns/{turn_id}/audio?track=both"
    )
    await page.wait_for_function(
        "() => { const a = document.getElementById('clip'); return a.currentTime > 0.3; }",
        timeout=15_000,
    )
    assert await page.eval_on_selector("#clip", "a => a.paused") is False
    await expect(page.locator(f".entry.current[data-turn-id='{turn_id}']")).to_have_count(1)
    await expect(page.locator(f".turn.current[data-turn-id='{turn_id}']")).to_have_count(1)
    await screenshot(page, "session")


async def test_a_call_longer_than_10_minutes_is_drawn_10_minutes_at_a_time_in_the_timeline_s_scale(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """The API gives 10 minutes of audio at a time: the waveform draws such a window where
    it falls in the call, lined up with the turns' bars, and the buttons beside it draw the
    next or the one before. A call in progress opens at its latest 10 minutes."""
    session_id = "long/call 1"
    await _publish_recorded(viewer.api, session_id, T0 - HOUR, LONG_CALL, tmp_path / "ended")
    drawn: list[int] = []
    page.on("request", lambda r: _from_ms(r.url, drawn))
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    regions = page.locator("[part='regions-container'] > div")
    await expect(regions).to_have_count(5, timeout=20_000)
    assert drawn == [0]
    for turn in LONG_CALL[:5]:
        await _lined_up(page, turn)
    await expect(page.locator(".wave-controls .earlier")).to_be_hidden()
    await screenshot(page, "long-call")
    await page.click(".wave-controls .later")
    await expect(regions).to_have_count(1, timeout=20_000)
    assert drawn == [0, 600_000]
    await _lined_up(page, LONG_CALL[5])
    await expect(page.locator(".wave-controls .later")).to_be_hidden()
    await screenshot(page, "long-call-later")

    live_id = "long/live 1"
    began = now() - timedelta(seconds=LONG_CALL[-1].end_s + 20)
    await _publish_recorded(viewer.api, live_id, began, LONG_CALL, tmp_path / "live")
    await page.goto(viewer.at(f"/session/{quote(live_id, safe='')}"))
    await expect(page.locator(".summary .badge")).to_have_text("open")
    await _lined_up(page, LONG_CALL[5])
    assert drawn[2:] == [600_000], drawn


async def test_latency_labels_that_would_overlap_are_hidden_and_kept_in_the_gap_s_title(
    viewer: Viewer, page: Page
) -> None:
    """Three minutes of turns 3 s apart: a gap every 6 s, closer than a label is wide."""
    session_id = "crowded call"
    await viewer.api.publish(conversation(session_id, T0, turns=60))
    await viewer.api.until_projected()
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    gaps = page.locator(".lane-gaps .gap")
    await expect(gaps).to_have_count(30)
    for title in await gaps.evaluate_all("gs => gs.map((g) => g.title)"):
        assert "1,000 ms" in title, title
    shown = await page.eval_on_selector_all(
        ".lane-gaps .label",
        """ls => ls.filter((l) => getComputedStyle(l).visibility !== "hidden")
            .map((l) => [l.getBoundingClientRect().left, l.getBoundingClientRect().right])""",
    )
    assert 1 < len(shown) < 30, shown
    for (_, right), (left, _) in itertools.pairwise(sorted(shown)):
        assert right <= left, shown
    await screenshot(page, "crowded-latencies")


async def test_a_turn_s_transcript_entry_and_region_play_it_from_the_keyboard(
    viewer: Viewer, page: Page
) -> None:
    session_id, _, script, _ = CALLS[1]
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await expect(page.locator(".wave-controls")).to_be_visible(timeout=20_000)
    for turn, target, key in (
        (script[1], f".entry[data-turn-id='{_turn_id(script[1])}']", "Space"),
        (script[2], f"[part~='{_turn_id(script[2])}']", "Enter"),
    ):
        pressed = page.locator(target)
        await expect(pressed).to_have_attribute("role", "button")
        await pressed.focus()
        async with page.expect_request(lambda r: "/turns/" in r.url) as requested:
            await page.keyboard.press(key)
        assert f"/turns/{_turn_id(turn)}/audio" in (await requested.value).url
    await screenshot(page, "keyboard")


async def test_behind_a_token_the_page_asks_for_it_then_sends_it_with_every_call(
    kafka_bootstrap: str,
    topics: Topics,
    clickhouse_dsn: str,
    database: str,
    tmp_path: Path,
    page: Page,
) -> None:
    """With ``TSTORE_API_TOKEN`` set, the page says a token is needed; once it is entered,
    the list, the session, its waveform and a turn's clip all come (fetched with it)."""
    token = "viewer-token-4f1c"
    session_id, bot_id, script, started = CALLS[1]
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database, token=token) as api:
        store = open_chunk_store(tmp_path.as_uri())
        await api.publish(
            [
                e.model_copy(update={"bot_id": bot_id})
                for e in recorded_call(session_id, started, script, store)
            ]
        )
        await api.until_projected()
        url = str(api.http.base_url).rstrip("/")
        await page.goto(f"{url}/#/")
        await expect(page.locator("#error")).to_contain_text("bearer token")
        await page.locator("#token").fill(token)
        await page.locator("#token").press("Enter")
        await expect(page.locator("table.sessions tbody tr")).to_have_count(1)
        await expect(page.locator("#error")).to_be_hidden()
        await page.goto(f"{url}/#/session/{quote(session_id, safe='')}")
        await expect(page.locator(".wave-controls")).to_be_visible(timeout=20_000)
        first = _turn_id(script[0])
        await page.click(f".lane-{script[0].role} .turn[data-turn-id='{first}']")
        await page.wait_for_function(
            "() => document.getElementById('clip').currentTime > 0.3", timeout=15_000
        )
        await screenshot(page, "session-behind-a-token")


async def test_search_from_the_page_finds_a_turn(viewer: Viewer, page: Page) -> None:
    words = "parcel warehouse"
    found = await viewer.api.ok("/v1/search", q=words)
    assert found["items"], "no simulated turn says it"
    await page.goto(viewer.at("/"))
    await page.fill("#search input[name=q]", words)
    await page.press("#search input[name=q]", "Enter")
    hits = page.locator(".hits .hit")
    await expect(hits).to_have_count(len(found["items"]))
    first = found["items"][0]
    await expect(hits.first.locator(".marked")).to_have_text(first["text"])
    await expect(hits.first.locator("mark")).to_have_text(["parcel", "warehouse"])
    await screenshot(page, "search")
    await hits.first.locator("a").click()
    await expect(page.locator("h1")).to_contain_text(first["session_id"])
    entry = page.locator(f".entry[data-turn-id='{first['turn_id']}']")
    await expect(entry).to_contain_text(first["text"])
    await expect(entry).to_have_class("entry role-assistant current")


async def test_times_say_the_zone_they_are_shown_in(viewer: Viewer, browser: Browser) -> None:
    context = await browser.new_context(timezone_id="America/New_York")
    page = await context.new_page()
    for fragment in ("/", "/analytics"):
        await page.goto(viewer.at(fragment))
        await expect(page.locator(".filters")).to_contain_text("From (America/New_York)")
        await expect(page.locator(".freshness")).to_contain_text(" GMT-")
    await expect(page.locator("table.figures tbody td").first).to_contain_text(" GMT-")
    await expect(page.locator(".charts")).to_contain_text("Time axes in America/New_York")
    await context.close()


async def test_the_analytics_page_shows_the_numbers_the_api_gives(
    viewer: Viewer, page: Page
) -> None:
    query: dict[str, Any] = {
        "since": (T0 - HOUR).isoformat(),
        "until": (T0 + 3 * HOUR).isoformat(),
        "bucket": "hour",
        "group_by": "bot",
    }
    answer = await viewer.api.ok("/v1/analytics", **query)
    fragment = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    await page.goto(viewer.at(f"/analytics?{fragment}"))
    rows = page.locator("table.figures tbody tr")
    await expect(rows).to_have_count(len(answer["rows"]))
    for row in answer["rows"]:
        shown = page.locator(
            f"table.figures tr[data-bucket='{row['bucket_start']}'][data-group='{row['group']}']"
        )
        latency = row["response_latency_ms"] or {}
        for p in ("p50", "p90", "p99"):
            await expect(shown.locator(f"[data-metric='latency-{p}']")).to_have_text(
                _shown(latency.get(p), "ms")
            )
        await expect(shown.locator("[data-metric='interruptions-per-100']")).to_have_text(
            _shown(row["interruptions_per_100_assistant_turns"])
        )
    groups = {row["group"] for row in answer["rows"]}
    await expect(page.locator(".charts .group")).to_have_count(len(groups))
    await expect(page.locator(".charts canvas")).to_have_count(2 * len(groups))
    for definition in answer["definitions"]:
        await expect(page.locator(".definitions")).to_contain_text(definition["definition"])
    legend = page.locator(".u-legend th").first
    await expect(legend).to_have_css("background-color", "rgba(0, 0, 0, 0)")
    await screenshot(page, "analytics")

    # Latency and interruptions are the assistant's: the user's charts would be empty.
    await page.select_option("select[name=group_by]", "role")
    await page.click(".filters button[type=submit]")
    await expect(page.locator(".group[data-group='assistant'] canvas")).to_have_count(2)
    await expect(page.locator(".group[data-group='user'] canvas")).to_have_count(0)
    await expect(page.locator(".group[data-group='user'] .no-data")).to_have_count(2)
    await screenshot(page, "analytics-per-role")

    await page.goto(viewer.at("/analytics?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z"))
    await expect(page.locator(".empty")).to_have_text("No turn in this range.")
    assert await _stray_text(page) == []


async def test_choosing_a_bucket_on_the_analytics_page_sets_the_range_it_reads_well_at(
    viewer: Viewer, page: Page
) -> None:
    """An hour by the minute, a day by the hour (the default), a month by the day: the range
    ends where it did."""
    await page.goto(viewer.at("/analytics"))
    await expect(page.locator(".definitions")).to_be_visible()
    await expect(page.locator(".bad-params")).to_be_hidden()
    for bucket, span in (("minute", timedelta(hours=1)), ("day", timedelta(days=30))):
        await page.select_option("select[name=bucket]", bucket)
        async with page.expect_request(lambda r: "/v1/analytics?" in r.url) as requested:
            await page.click(".filters button[type=submit]")
        query = parse_qs(urlsplit((await requested.value).url).query)
        since, until = (datetime.fromisoformat(query[name][0]) for name in ("since", "until"))
        assert (query["bucket"], until - since) == ([bucket], span)


async def test_a_bad_parameter_in_the_url_is_named_and_the_page_shows_its_default(
    viewer: Viewer, page: Page
) -> None:
    for fragment, bad, shown in (
        ("/analytics?since=yesterday&bucket=fortnight", ["since", "bucket"], ".definitions"),
        ("/?since=soon&min_turns=many&bot_id=bot-a", ["since", "min_turns"], "table.sessions"),
    ):
        await page.goto(viewer.at(fragment))
        await expect(page.locator(shown)).to_be_visible()
        await expect(page.locator("#error")).to_be_hidden()
        note = page.locator(".bad-params")
        for name in bad:
            await expect(note).to_contain_text(f"{name}=")
        await expect(note).not_to_contain_text("bot_id=")
    await screenshot(page, "bad-parameters")


async def test_without_the_libraries_the_page_says_what_to_install(
    viewer: Viewer, page: Page
) -> None:
    await page.route("**/viewer/lib/**", lambda route: route.fulfill(status=404))
    session_id = CALLS[1][0]
    await page.goto(viewer.at(f"/session/{session_id}"))
    await expect(page.locator("#libraries")).to_contain_text("make setup")
    await expect(page.locator("#libraries")).to_contain_text("Node.js 20+")
    await expect(page.locator(".transcript .entry")).to_have_count(len(CALLS[1][2]))


async def test_the_page_of_a_call_in_progress_updates_without_a_reload(
    viewer: Viewer, page: Page
) -> None:
    session_id = "live/call 1"
    call = conversation(session_id, now() - timedelta(seconds=30), turns=4)
    await viewer.api.publish(call[:4])  # two turns so far
    await viewer.api.until_projected()
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    bars = page.locator(".timeline .turn")
    await expect(bars).to_have_count(2)
    await page.evaluate("window.notReloaded = true")
    started = time.monotonic()
    await viewer.api.publish(call[4:])
    await expect(page.locator(".lane-assistant .turn[data-turn-id='turn-3']")).to_have_text(
        "assistant says sentence number 3.", timeout=30_000
    )
    print(f"published to shown: {time.monotonic() - started:.2f} s")
    await expect(bars).to_have_count(4)
    await expect(page.locator(".transcript .entry")).to_have_count(4)
    assert await page.evaluate("window.notReloaded") is True
    await screenshot(page, "live")


async def test_a_live_call_s_waveform_grows_by_the_audio_heard_and_waits_while_played(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """Events come faster than the waveform's refresh period: it is drawn anew all the same
    while they come, each time from the audio of the chunks heard since (not the whole
    recording again); a waveform being played is left playing until it is paused, and
    playing fetches the whole window once."""
    session_id = "live/recorded 1"
    script = script_call(random.Random(4), 16)
    began = now() - timedelta(minutes=1)
    events = recorded_call(
        session_id,
        began,
        script,
        open_chunk_store(tmp_path.as_uri()),
        chunk_s={"user": 1.0, "assistant": 1.0},
    )
    turns = events[: 2 * len(script)]

    def chunks(since_s: float, until_s: float) -> list[Event]:
        """The chunks that start in that span of the call."""
        return [
            e
            for e in events[2 * len(script) :]
            if isinstance(e, ChunkReady) and since_s <= _chunk_start_s(e, began) < until_s
        ]

    starts = [turn.start_s for turn in script] + [float("inf")]
    await viewer.api.publish(turns[:8] + chunks(float("-inf"), starts[4]))
    await viewer.api.until_projected()
    drawn: list[int] = []  # the from_ms of each fetch of the recording
    page.on("request", lambda r: _from_ms(r.url, drawn))
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    regions = page.locator("[part='regions-container'] > div")
    await expect(regions).to_have_count(4, timeout=20_000)
    assert drawn == [0]

    for n in range(4, 14):  # a turn and its audio every 0.6 s for 6 s, twice the period
        await viewer.api.publish(turns[2 * n : 2 * n + 2] + chunks(starts[n], starts[n + 1]))
        await asyncio.sleep(0.6)
    assert len(drawn) > 1, "the waveform was not drawn anew while the events kept coming"
    await expect(regions).to_have_count(14, timeout=20_000)
    await asyncio.sleep(REFRESH_S)  # nothing left to draw
    assert all(from_ms > 0 for from_ms in drawn[1:]), f"fetched the whole call again: {drawn}"

    play = page.locator(".wave-controls .play")
    await play.click()
    await expect(play).to_have_text("Pause")
    await screenshot(page, "live-waveform-playing")
    assert drawn[-1] == 0, "playing did not fetch the window as drawn"
    heard = len(drawn)
    await viewer.api.publish(turns[28:32] + chunks(starts[14], starts[16]))
    await expect(page.locator(".timeline .turn")).to_have_count(16, timeout=20_000)
    await asyncio.sleep(REFRESH_S + 1)
    await expect(play).to_have_text("Pause")
    assert len(drawn) == heard, "the waveform was taken away while played"
    await expect(regions).to_have_count(14)
    await play.click()
    await expect(regions).to_have_count(16, timeout=20_000)
    assert len(drawn) == heard + 1, drawn
    assert drawn[-1] > 0, "the waveform was drawn from the whole call again once paused"
    await screenshot(page, "live-waveform")


async def test_a_live_call_without_audio_asks_for_it_again_once_a_chunk_comes(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """Its recording answered 404: turns coming do not ask again at each refresh, a chunk
    does."""
    session_id = "live/unrecorded 1"
    script = script_call(random.Random(6), 6)
    store = open_chunk_store(tmp_path.as_uri())
    events = recorded_call(session_id, now() - timedelta(seconds=30), script, store)
    turns, chunks = events[: 2 * len(script)], events[2 * len(script) :]
    await viewer.api.publish(turns[:4])
    await viewer.api.until_projected()
    asked: list[int] = []
    page.on("request", lambda r: _from_ms(r.url, asked))
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await expect(page.locator(".waveform .note")).to_contain_text("No waveform")
    assert asked == [0]
    await viewer.api.publish(turns[4:])
    await expect(page.locator(".timeline .turn")).to_have_count(len(script), timeout=20_000)
    await asyncio.sleep(REFRESH_S + 1)
    assert asked == [0], "asked for the recording again with no chunk heard"
    await viewer.api.publish(chunks)
    regions = page.locator("[part='regions-container'] > div")
    await expect(regions).to_have_count(len(script), timeout=20_000)
    assert asked == [0, 0]
