"""The viewer's pages in Debian's chromium, against the real service serving simulated calls
(conftest's ``viewer``); the waveform's own tests are in test_waveform.py."""

from __future__ import annotations

import itertools
import random
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.async_api import Browser, Page, expect

from audio.stores import open_chunk_store
from producers.simulator import script_call
from schemas import Topics
from tests.browser.conftest import CALLS, HOUR, T0, Viewer, screenshot, turn_id_of
from tests.integration.api_support import conversation, live_api, now
from tests.integration.audio_support import recorded_call

pytestmark = pytest.mark.integration


def _shown(value: float | None, unit: str = "") -> str:
    """A number as the page shows it: grouped thousands, at most one decimal."""
    if value is None:
        return "\N{EN DASH}"
    text = f"{value:,.1f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".rstrip()


async def _stray_text(page: Page) -> list[str]:
    """Text the page put between its blocks: what a page appending a null shows ('null')."""
    return list(
        await page.evaluate(
            "[...document.getElementById('page').childNodes]"
            ".filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent)"
        )
    )


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
    barged = [turn_id_of(t) for t in script if t.interrupted]
    assert barged, "the script has no barge-in"
    for turn_id in barged:
        await expect(page.locator(f".turn.interrupted[data-turn-id='{turn_id}']")).to_have_count(1)
    await expect(page.locator(".lane-assistant .mark.interrupted")).to_have_count(len(barged))
    await expect(page.locator(".wave-controls")).to_be_visible(timeout=20_000)
    await expect(page.locator("[part='regions-container'] > div")).to_have_count(len(script))

    longest = max(script, key=lambda t: t.end_s - t.start_s)
    turn_id = turn_id_of(longest)
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
    """A key held down plays the turn once: its repeats ask for no clip. The transcript's
    entries stay list items, a button in each."""
    session_id, _, script, _ = CALLS[1]
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await expect(page.locator(".wave-controls")).to_be_visible(timeout=20_000)
    await expect(page.locator(".transcript .entry").first).to_have_role("listitem")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    for turn, target, key in (
        (script[1], f".entry[data-turn-id='{turn_id_of(script[1])}'] button", "Space"),
        (script[2], f"[part~='{turn_id_of(script[2])}']", "Enter"),
        (script[3], f".timeline .turn[data-turn-id='{turn_id_of(script[3])}']", "Enter"),
    ):
        pressed = page.locator(target)
        await expect(pressed).to_have_role("button")
        await pressed.focus()
        del asked[:]
        async with page.expect_request(lambda r: "/turns/" in r.url):
            for _ in range(3):  # the second and third are the key's repeats
                await page.keyboard.down(key)
            await page.keyboard.up(key)
        await page.wait_for_timeout(500)
        clips = [url for url in asked if "/turns/" in url]
        assert len(clips) == 1, clips
        assert f"/turns/{turn_id_of(turn)}/audio" in clips[0]
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
        first = turn_id_of(script[0])
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
    """The list in the browser's zone; the analytics in UTC, the zone its buckets begin in."""
    context = await browser.new_context(timezone_id="America/New_York")
    page = await context.new_page()
    await page.goto(viewer.at("/"))
    await expect(page.locator(".filters")).to_contain_text("From (America/New_York)")
    await expect(page.locator(".freshness")).to_contain_text(" GMT-")
    await page.goto(viewer.at("/analytics"))
    await expect(page.locator(".filters")).to_contain_text("From (UTC)")
    await expect(page.locator(".freshness")).to_contain_text(" UTC")
    await expect(page.locator("table.figures tbody td").first).to_contain_text(" UTC")
    await expect(page.locator(".charts")).to_contain_text("Times in UTC")
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
    """A time is ISO 8601 with its zone, its date one that exists, as the API wants it."""
    for fragment, bad, shown in (
        (
            "/analytics?since=yesterday&bucket=fortnight&until=2025-01-31T09:00:00%2B01:00",
            ["since", "bucket"],
            ".definitions",
        ),
        ("/?since=soon&min_turns=many&bot_id=bot-a", ["since", "min_turns"], "table.sessions"),
        (
            "/?since=2025-02-30T00:00:00Z&until=1/31/2025 09:00 %2B01:00",
            ["since", "until"],
            "table.sessions",
        ),
        ("/?until=Fri, 31 Jan 2025 09:00:00 %2B0100&bot_id=bot-a", ["until"], "table.sessions"),
        ("/search?q=weather&role=foo&bot_id=bot-a", ["role"], ".hits, .empty"),
    ):
        await page.goto(viewer.at(fragment))
        await expect(page.locator(shown)).to_be_visible()
        await expect(page.locator("#error")).to_be_hidden()
        note = page.locator(".bad-params")
        for name in bad:
            await expect(note).to_contain_text(f"{name}=")
        await expect(note).not_to_contain_text("bot_id=")
        if "until" not in bad:
            await expect(note).not_to_contain_text("until=")
    await screenshot(page, "bad-parameters")


async def test_a_session_named_with_dots_is_refused_by_name(viewer: Viewer, page: Page) -> None:
    """Its page would otherwise ask for another path: the browser drops a dot segment."""
    for dots in (".", ".."):
        await page.goto(viewer.at(f"/session/{dots}"))
        await expect(page.locator("#error")).to_contain_text(f'the id "{dots}"')
        await expect(page.locator("#error")).to_contain_text("sends it as %2E")
    await screenshot(page, "dot-id")


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
    first = page.locator(".transcript button[data-turn-id='turn-0']")
    await first.focus()
    await page.evaluate("window.notReloaded = true")
    started = time.monotonic()
    await viewer.api.publish(call[4:])
    await expect(page.locator(".lane-assistant .turn[data-turn-id='turn-3']")).to_have_text(
        "assistant says sentence number 3.", timeout=30_000
    )
    print(f"published to shown: {time.monotonic() - started:.2f} s")
    await expect(bars).to_have_count(4)
    await expect(page.locator(".transcript .entry")).to_have_count(4)
    await expect(first).to_be_focused()  # the redraws made it anew
    assert await page.evaluate("window.notReloaded") is True
    await screenshot(page, "live")


_PLACED = """(entry) => {
    const list = entry.closest(".transcript");
    const e = entry.getBoundingClientRect();
    const style = getComputedStyle(entry);
    const ring = style.outlineStyle === "none"
        ? 0 : parseFloat(style.outlineWidth) + parseFloat(style.outlineOffset);
    const l = list.getBoundingClientRect();
    const left = l.left + list.clientLeft;
    const top = l.top + list.clientTop;
    return {
        entry: [e.left - ring, e.top - ring, e.right + ring, e.bottom + ring],
        shown: [
            Math.max(left, 0), Math.max(top, 0),
            Math.min(left + list.clientWidth, window.innerWidth),
            Math.min(top + list.clientHeight, window.innerHeight),
        ],
        scrollTop: list.scrollTop,
    };
}"""
"""Where a transcript entry is, with its highlight's outline (left, top, right, bottom), and
the part of its list the window shows."""


def _whole(placed: dict[str, Any]) -> bool:
    """Whether the entry and its outline lie inside what the window shows of the list."""
    (left, top, right, bottom), (shown_left, shown_top, shown_right, shown_bottom) = (
        placed["entry"],
        placed["shown"],
    )
    return bool(
        shown_left <= left and shown_top <= top and right <= shown_right and bottom <= shown_bottom
    )


async def _settled(page: Page, selector: str) -> dict[str, Any]:
    """Where the entry is once the transcript has stopped scrolling."""
    entry = page.locator(selector)
    before: dict[str, Any] = {}
    for _ in range(50):
        placed = dict(await entry.evaluate(_PLACED))
        if placed == before:
            return placed
        before = placed
        await page.wait_for_timeout(200)
    raise AssertionError(f"the transcript kept scrolling: {before}")


async def test_the_transcript_shows_the_first_turn_whole_once_scrolled_to_it(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """A link to the first turn, and a click on its bar with the transcript scrolled to its
    end, show its entry whole in the list, with the outline of the turn being played (the
    list clipped the outline's top edge: the first entry cannot scroll below the top)."""
    session_id = "long transcript 1"
    script = script_call(random.Random(8), 24)
    store = open_chunk_store(tmp_path.as_uri())
    await viewer.api.publish(recorded_call(session_id, T0, script, store))
    await viewer.api.until_projected()
    first, last = turn_id_of(script[0]), turn_id_of(script[-1])
    entry = f".transcript .entry[data-turn-id='{first}']"
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}?turn={first}"))
    await expect(page.locator(".wave-controls")).to_be_visible(timeout=20_000)
    placed = await _settled(page, entry)
    assert _whole(placed), placed

    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}?turn={last}"))
    await expect(page.locator(".wave-controls")).to_be_visible(timeout=20_000)
    scrolled = await _settled(page, entry)
    assert scrolled["scrollTop"] > 0, "the transcript is too short to scroll"
    await page.click(f".lane-{script[0].role} .turn[data-turn-id='{first}']")
    await expect(page.locator(entry)).to_have_class(re.compile(r"\bcurrent\b"), timeout=15_000)
    placed = await _settled(page, entry)
    await expect(page.locator(entry)).to_have_class(re.compile(r"\bcurrent\b"))  # outlined
    assert placed["scrollTop"] < scrolled["scrollTop"], placed
    assert _whole(placed), placed
    await screenshot(page, "transcript-first-turn")


async def test_short_spans_keep_their_tenths_and_long_calls_their_hours(
    viewer: Viewer, page: Page
) -> None:
    """An overlap of 192 ms read "0 s" beside the API's 192; a turn 4.5 hours into a call
    read "270:00.0"."""
    await page.goto(f"{viewer.url}/")
    shown = await page.evaluate(
        "import('/viewer/app/format.js').then((f) => ["
        "f.fmtDuration(192), f.fmtDuration(7000), f.fmtDuration(59960), f.fmtDuration(125400),"
        "f.fmtClock(59.96), f.fmtClock(16200), f.fmtClock(3599.94)])"
    )
    assert shown == ["0.2 s", "7 s", "1 min 0 s", "2 min 5 s", "1:00.0", "4:30:00.0", "59:59.9"]


async def test_a_turn_never_stopped_is_being_said_only_while_the_call_may_go_on(
    viewer: Viewer, page: Page
) -> None:
    """A call silent for hours with its last turn never stopped (abandoned) said "speaking…"
    of that turn, as a call in progress does."""
    calls = {"open turn/old": now() - timedelta(hours=2), "open turn/now": now()}
    for session_id, at in calls.items():
        await viewer.api.publish(conversation(session_id, at, turns=2)[:3])
    await viewer.api.until_projected()
    for session_id, said in zip(calls, ("never stopped", "speaking…"), strict=True):
        await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
        await expect(page.locator(".transcript .badge.open")).to_have_text(said)


async def test_every_bar_lies_within_its_lane(viewer: Viewer, page: Page) -> None:
    """A turn never stopped in a call that ended begins where the call ends: its bar (a
    padding's width) reached past the lane's end."""
    session_id = "open turn/at the end"
    await viewer.api.publish(conversation(session_id, now() - timedelta(hours=2), turns=2)[:3])
    await viewer.api.until_projected()
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await expect(page.locator(".timeline .turn")).to_have_count(2)
    outside = await page.evaluate(
        """[...document.querySelectorAll('.timeline .turn')].filter((bar) => {
            const b = bar.getBoundingClientRect(), t = bar.parentElement.getBoundingClientRect();
            return b.left < t.left - 0.5 || b.right > t.right + 0.5 || b.width < 5;
        }).map((bar) => bar.dataset.turnId)"""
    )
    assert outside == []
