"""What a session's page says of itself, in Debian's chromium against the real service: a bad
id in the URL, the tab's title on every page, a call without audio, a turn being said while
the call goes on, a clip once it has played, and a page left while it loads."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import ConsoleMessage, Page, Route, expect

from tests.browser.conftest import CALLS, Viewer, screenshot, turn_id_of
from tests.browser.test_waveform import live_call
from tests.events import ended
from tests.integration.api_support import conversation, now

pytestmark = pytest.mark.integration

CURRENT = re.compile(r"\bcurrent\b")


async def test_a_bad_session_id_in_the_url_is_named(viewer: Viewer, page: Page) -> None:
    """No id, and an id whose percent-encoding is cut short, showed the script's own errors
    ("Cannot read properties of undefined", "URI malformed")."""
    error = page.locator("#error")
    for fragment, said, name in (
        ("/session/", "No session id in the URL", "bad-session-id-empty"),
        ("/session/%E0%A4%A", 'The session id in the URL, "%E0%A4%A", is malformed', "bad-id"),
    ):
        await page.goto(viewer.at(fragment))
        await expect(error).to_contain_text(said)
        await expect(error).not_to_contain_text("undefined")
        await expect(error).not_to_contain_text("URI malformed")
        await screenshot(page, name)


async def test_the_tab_s_title_names_the_page(viewer: Viewer, page: Page) -> None:
    session_id = CALLS[0][0]
    for fragment, title in (
        ("/", "Sessions"),
        ("/search?q=parcel", "Search: parcel"),
        ("/analytics", "Analytics"),
        (f"/session/{quote(session_id, safe='')}", session_id),
    ):
        await page.goto(viewer.at(fragment))
        await expect(page).to_have_title(f"{title} · transcript-store")


async def test_a_call_without_audio_offers_no_clip_until_its_audio_comes(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """Each click on a turn of a call without audio asked for its clip, got a 404 (logged in
    the console) and said no audio covers it: the page knows from the chunk index that there
    is none. A live call's first chunk offers the clips."""
    errors: list[ConsoleMessage] = []
    page.on("console", lambda message: errors.append(message))
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    sealed = "no audio/sealed 1"
    await viewer.api.publish(
        [*conversation(sealed, now() - timedelta(hours=1)), ended(8, sealed, bot_id="api-bot")]
    )
    live = "no audio/live 1"
    _, _, turns, chunks = live_call(live, 10, 4, tmp_path)
    await viewer.api.publish(turns)
    await viewer.api.until_projected()

    note, clip = page.locator(".clip-note"), page.locator("#clip")
    for session_id in (sealed, live):
        await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
        await expect(note).to_have_text("No recording for this call.")
        await expect(clip).to_be_hidden()
        bar = page.locator(".timeline .turn").first
        await bar.click()
        await expect(bar).to_have_class(CURRENT)  # the turn clicked is marked all the same
        await page.wait_for_timeout(500)
        await expect(note).to_have_text("No recording for this call.")
    await screenshot(page, "no-recording")
    assert [url for url in asked if "/turns/" in url] == [], asked
    assert [m.text for m in errors if m.type == "error"] == []

    await viewer.api.publish(chunks)
    await expect(note).to_have_text("Click a turn to play it.", timeout=20_000)
    await expect(clip).to_be_visible()
    async with page.expect_request(lambda r: "/turns/" in r.url):
        await page.locator(".timeline .turn").first.click()


async def test_a_turn_being_said_is_no_hole_while_the_call_may_go_on(
    viewer: Viewer, page: Page
) -> None:
    """A call in progress said "Holes: open turns" whenever someone was speaking; once the
    call is over (here abandoned: silent for hours), a turn never stopped is a hole."""
    calls = {"open turn/said 1": now(), "open turn/lost 1": now() - timedelta(hours=2)}
    for session_id, at in calls.items():
        await viewer.api.publish(conversation(session_id, at, turns=2)[:3])
    await viewer.api.until_projected()
    summary = page.locator(".summary")
    for (session_id, _), state, said in zip(
        calls.items(), ("open", "abandoned"), ("speaking…", "never stopped"), strict=True
    ):
        await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
        await expect(summary.locator(".badge")).to_have_text(state)
        await expect(page.locator(".transcript .badge.open")).to_have_text(said)
        if state == "open":
            await expect(summary).not_to_contain_text("Holes")
        else:
            await expect(summary.locator(".note")).to_have_text("Holes: open turns")
        await screenshot(page, f"open-turn-{state}")


async def test_a_clip_played_to_its_end_says_so_and_keeps_its_turn_marked(
    viewer: Viewer, page: Page
) -> None:
    """The note said "Playing" after the clip had ended, and the highlight went with the
    clip's last moment (past its turn), so the turn clicked was no longer marked. A clip
    paused (here by playing the call) says so too."""
    session_id, _, script, _ = CALLS[1]
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await expect(page.locator(".wave-controls")).to_be_visible(timeout=20_000)
    note = page.locator(".clip-note")
    shortest = min(script, key=lambda t: t.end_s - t.start_s)
    turn_id = turn_id_of(shortest)
    await page.click(f".transcript .entry[data-turn-id='{turn_id}'] button")
    await expect(note).to_contain_text(f"Playing the {shortest.role} turn at")
    await page.wait_for_function("() => document.getElementById('clip').ended", timeout=20_000)
    await expect(note).to_have_text(re.compile(rf"^Played the {shortest.role} turn at .*: "))
    entry = page.locator(f".transcript .entry[data-turn-id='{turn_id}']")
    await expect(entry).to_have_class(CURRENT)
    await expect(page.locator(f".timeline .turn[data-turn-id='{turn_id}']")).to_have_class(CURRENT)
    marked = await page.eval_on_selector_all(".current", "all => all.map((n) => n.dataset.turnId)")
    assert set(marked) == {turn_id}, marked
    await screenshot(page, "clip-played")

    longest = max(script, key=lambda t: t.end_s - t.start_s)
    await page.click(f".transcript .entry[data-turn-id='{turn_id_of(longest)}'] button")
    await expect(note).to_contain_text(longest.text, timeout=15_000)  # not the clip before's
    await page.wait_for_function(
        "() => document.getElementById('clip').currentTime > 0.3", timeout=15_000
    )
    await page.click(".wave-controls .play")
    await expect(note).to_contain_text(f"Paused the {longest.role} turn at")


async def test_a_page_left_while_it_loads_shows_nothing_under_the_next(
    viewer: Viewer, page: Page
) -> None:
    """The list, still loading when a session was opened, was drawn under the session once its
    answer came: each page fills a <main> of its own."""

    async def slow(route: Route) -> None:
        await asyncio.sleep(1.5)
        await route.continue_()

    await page.route(lambda url: "/v1/sessions?" in url, slow)
    await page.goto(viewer.at("/"))
    session_id = CALLS[0][0]
    await page.evaluate(
        "(fragment) => { location.hash = fragment; }", f"#/session/{quote(session_id, safe='')}"
    )
    await expect(page.locator("h1")).to_contain_text(session_id)
    await page.wait_for_timeout(2500)  # the list's answer has come
    await expect(page.locator("table.sessions")).to_have_count(0)
    await expect(page.locator("main")).to_have_count(1)
