"""A session's page from the keyboard, and a long call's timeline on a phone: a skip link
first, then the turns one tab stop each in the order they were said, Enter or Space playing
them, the focus plain to see; a long call's timeline and waveform scroll sideways in their
own box (the page keeps to the phone's width), its turns wide enough to read, and the box
follows the turn being played."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, expect

from tests.browser.conftest import CALLS, HOUR, T0, Viewer, screenshot, turn_id_of
from tests.browser.test_layout_narrow_and_long import DESKTOP, PHONE, page_fits
from tests.browser.test_session_page_states import CURRENT
from tests.browser.test_waveform import LONG_CALL, publish_recorded
from tests.integration.api_support import conversation, now

pytestmark = pytest.mark.integration

_FOCUSED = """() => {
    let node = document.activeElement;
    while (node?.shadowRoot?.activeElement) node = node.shadowRoot.activeElement;
    if (!node || node === document.body) return null;
    const where = node.getRootNode() !== document ? "waveform"
        : node.closest(".timeline") ? "timeline"
        : node.closest(".transcript") ? "transcript" : "page";
    const turn = node.dataset?.turnId ?? (node.part?.length ? node.part.value : null);
    const style = getComputedStyle(node);
    return {where, turn, id: node.id, tag: node.tagName,
            outline: [style.outlineStyle, parseFloat(style.outlineWidth)]};
}"""
"""What has the keyboard's focus (inside the waveform's shadow root too): where it is, the
turn it stands for, and its outline."""

_SEEN = """(bar) => {
    if (!bar.isConnected) return null;
    const box = bar.closest(".call-scroll").getBoundingClientRect();
    const name = bar.closest(".lane").querySelector(".lane-label").getBoundingClientRect();
    const b = bar.getBoundingClientRect();
    return b.left >= name.right - 1 && b.right <= box.right + 1;
}"""
"""Whether the bar lies wholly in the part of the timeline's box in sight (past the lanes'
names, kept over the lanes); null for a bar a live page's redrawing took away meanwhile."""


async def _seen_live(page: Page, selector: str) -> bool:
    """``_SEEN`` of the bar ``selector`` finds on a live call's page, measured again while a
    redrawing replaces the bar under the measure (it did in CI, once)."""
    for _ in range(50):
        with contextlib.suppress(PlaywrightError):
            seen = await page.locator(selector).evaluate(_SEEN, timeout=2_000)
            if seen is not None:
                return bool(seen)
        await asyncio.sleep(0.2)
    raise AssertionError(f"{selector} was never measured")


_IN_BOX = """(node) => {
    const box = node.closest(".call-scroll").getBoundingClientRect();
    const n = node.getBoundingClientRect();
    return n.left >= box.left && n.right <= box.right;
}"""
"""Whether ``node`` lies within the sides of the timeline's box: not scrolled out of it."""


async def _focused(page: Page) -> dict[str, Any] | None:
    focused: dict[str, Any] | None = await page.evaluate(_FOCUSED)
    return focused


async def _tab_stops(page: Page) -> list[dict[str, Any]]:
    """Every tab stop of the page from its top, in order, until the focus leaves the page
    or comes back to its first."""
    stops: list[dict[str, Any]] = []
    for _ in range(80):
        await page.keyboard.press("Tab")
        focused = await _focused(page)
        if focused is None or (stops and focused["id"] == stops[0]["id"] == "skip"):
            return stops
        stops.append(focused)
    raise AssertionError(f"more than 80 tab stops: {stops}")


async def test_the_keyboard_goes_from_a_skip_link_through_the_turns_in_the_order_said(
    viewer: Viewer, page: Page
) -> None:
    """Tab went lane by lane (every user turn, then every assistant turn), three stops a turn
    (its bar, its region, its transcript entry), with no way past the header."""
    session_id, _, script, _ = CALLS[1]
    said = [turn_id_of(t) for t in sorted(script, key=lambda t: t.start_s)]
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await expect(page.locator(".wave-controls")).to_be_visible(timeout=20_000)
    await expect(page.locator("[part='regions-container'] > div")).to_have_count(len(script))

    stops = await _tab_stops(page)
    assert stops[0]["id"] == "skip", stops
    turns = [stop for stop in stops if stop["turn"]]
    assert [stop["turn"] for stop in turns] == said, stops
    assert {stop["where"] for stop in turns} == {"transcript"}, turns

    await page.reload()
    await expect(page.locator(".wave-controls")).to_be_visible(timeout=20_000)
    await page.keyboard.press("Tab")
    skip = page.locator("#skip")
    await expect(skip).to_be_focused()
    await expect(skip).to_have_text("Skip to transcript")
    await expect(skip).to_be_in_viewport()
    await screenshot(page, "keyboard-skip-link")
    await page.keyboard.press("Enter")
    first = await _focused(page)
    assert first is not None
    assert first["turn"] == said[0], first
    style, width = first["outline"]
    assert style == "solid", first
    assert width >= 2, first

    for key, turn_id in (("Space", said[1]), ("Enter", said[2])):
        await page.keyboard.press("ArrowDown")
        focused = await _focused(page)
        assert focused is not None
        assert focused["turn"] == turn_id, focused
        async with page.expect_request(lambda r: "/turns/" in r.url) as clip:
            await page.keyboard.press(key)
        assert f"/turns/{turn_id}/audio" in (await clip.value).url
    entry = page.locator(f".transcript .entry[data-turn-id='{said[2]}']")
    await expect(entry).to_have_class(CURRENT)
    await expect(page.locator(f".timeline .turn.current[data-turn-id='{said[2]}']")).to_be_visible()
    await screenshot(page, "keyboard-turn-focused")
    await page.keyboard.press("End")
    last = await _focused(page)
    assert last is not None
    assert last["turn"] == said[-1], last
    await page.keyboard.press("Shift+Tab")
    back = await _focused(page)
    assert back is not None
    assert back["turn"] == said[-2], back


async def test_other_pages_skip_to_their_content(viewer: Viewer, page: Page) -> None:
    await page.goto(viewer.at("/"))
    await expect(page.locator("table.sessions tbody tr").first).to_be_visible()
    await page.keyboard.press("Tab")
    await expect(page.locator("#skip")).to_have_text("Skip to content")
    await page.keyboard.press("Enter")
    focused = await _focused(page)
    assert focused is not None
    assert focused["where"] == "page", focused
    assert focused["tag"] in {"INPUT", "SELECT", "BUTTON", "A"}, focused
    assert await page.evaluate("document.getElementById('page').contains(document.activeElement)")


async def _box_scrolls(page: Page) -> bool:
    return bool(
        await page.eval_on_selector(".call-scroll", "b => b.scrollWidth > b.clientWidth + 1")
    )


async def test_a_long_call_s_timeline_scrolls_in_its_own_box_with_readable_turns(
    viewer: Viewer, page: Page
) -> None:
    """400 turns, 20 minutes: on a phone each second of it had 0.2 px, each turn a sliver
    of the bars' least width, all of them piled on one another."""
    session_id = "long call/400 turns"
    await viewer.api.publish(conversation(session_id, T0, turns=400))
    await viewer.api.until_projected()
    for size, name in ((PHONE, "phone"), (DESKTOP, "desktop")):
        await page.set_viewport_size(size)
        await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
        bars = page.locator(".timeline .turn")
        await expect(bars).to_have_count(400)
        assert await _box_scrolls(page), name
        assert await page_fits(page), name
        track = await page.eval_on_selector(
            ".lane-user .track", "t => t.getBoundingClientRect().width"
        )
        assert track / (400 * 3 - 1) >= 4, f"{name}: {track} px for 1199 s"
        widths = await bars.evaluate_all("bs => bs.map((b) => b.getBoundingClientRect().width)")
        assert min(widths) >= 8, f"{name}: a turn of 2 s is {min(widths)} px"
        # The lanes' names stay in sight, over the lanes, as the box scrolls.
        await page.eval_on_selector(".call-scroll", "b => { b.scrollLeft = 2000; }")
        await page.wait_for_timeout(200)
        label = page.locator(".lane-user .lane-label")
        await expect(label).to_be_in_viewport()
        assert await label.evaluate(
            """l => { const r = l.getBoundingClientRect();
                return document.elementFromPoint(r.left + 5, (r.top + r.bottom) / 2) === l; }"""
        ), name
        await page.locator(".timeline").scroll_into_view_if_needed()
        await screenshot(page, f"long-call-scrolled-{name}")

        # A turn played (here: picked, the call has no recording) is brought into sight.
        last = page.locator(".timeline .turn[data-turn-id='turn-399']")
        assert not await last.evaluate(_SEEN), name
        await page.click(".transcript .entry[data-turn-id='turn-399'] button")
        await expect(last).to_have_class(CURRENT)
        await page.wait_for_function(
            f"() => ({_SEEN})(document.querySelector(\".turn[data-turn-id='turn-399']\"))"
        )


async def test_the_box_follows_the_turn_played_on_a_phone(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """An 11-minute recorded call on a phone: the turn whose clip plays is brought into sight
    in the timeline's box, at its end as at its start; its waveform scrolls with it."""
    session_id = "long/played on a phone"
    await publish_recorded(viewer.api, session_id, T0 - HOUR, LONG_CALL, tmp_path)
    await page.set_viewport_size(PHONE)
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await expect(page.locator("[part='regions-container'] > div")).to_have_count(5, timeout=20_000)
    assert await _box_scrolls(page)
    assert await page_fits(page)
    await page.eval_on_selector(".call-scroll", "b => { b.scrollLeft = 1500; }")
    assert await page.eval_on_selector(".wave-controls .play", _IN_BOX), "scrolled off"
    await page.eval_on_selector(".call-scroll", "b => { b.scrollLeft = 0; }")
    note = page.locator(".clip-note")
    for turn in (LONG_CALL[5], LONG_CALL[0]):
        turn_id = turn_id_of(turn)
        bar = page.locator(f".timeline .turn[data-turn-id='{turn_id}']")
        assert not await bar.evaluate(_SEEN), turn_id
        await page.click(f".transcript .entry[data-turn-id='{turn_id}'] button")
        await expect(note).to_contain_text(f"Playing the {turn.role} turn at", timeout=15_000)
        await page.wait_for_function(
            f"() => ({_SEEN})(document.querySelector(\".turn[data-turn-id='{turn_id}']\"))"
        )
        assert await page.eval_on_selector("#clip", "a => !a.paused"), turn_id
        await page.locator(".timeline").scroll_into_view_if_needed()
        await screenshot(page, f"long-call-played-phone-{LONG_CALL.index(turn)}")
    # The window's waveform lies under its turns' bars however the box is scrolled.
    region = page.locator(f"[part~='{turn_id_of(LONG_CALL[4])}']")
    bar = page.locator(f".timeline .turn[data-turn-id='{turn_id_of(LONG_CALL[4])}']")
    await page.eval_on_selector(".call-scroll", "b => { b.scrollLeft = 1000; }")
    await page.wait_for_timeout(200)
    region_box, bar_box = await region.bounding_box(), await bar.bounding_box()
    assert region_box
    assert bar_box
    assert abs(region_box["x"] - bar_box["x"]) < 2, (region_box, bar_box)
    await screenshot(page, "long-call-waveform-phone")


async def test_a_live_call_s_box_follows_its_newest_turn_unless_scrolled_back(
    viewer: Viewer, page: Page
) -> None:
    session_id = "live/long on a phone"
    call = conversation(session_id, now() - timedelta(seconds=250), turns=80)
    await viewer.api.publish(call[:120])  # 60 turns, 3 minutes
    await viewer.api.until_projected()
    await page.set_viewport_size(PHONE)
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await expect(page.locator(".summary .badge")).to_have_text("open")
    await expect(page.locator(".timeline .turn")).to_have_count(60)
    assert await _box_scrolls(page)
    newest = ".timeline .turn[data-turn-id='turn-{}']"
    assert await _seen_live(page, newest.format(59))
    await viewer.api.publish(call[120:150])
    await expect(page.locator(".timeline .turn")).to_have_count(75, timeout=30_000)
    assert await _seen_live(page, newest.format(74))
    await page.eval_on_selector(".call-scroll", "b => { b.scrollLeft = 0; }")
    await viewer.api.publish(call[150:])
    await expect(page.locator(".timeline .turn")).to_have_count(80, timeout=30_000)
    assert await page.eval_on_selector(".call-scroll", "b => b.scrollLeft") == 0
    await screenshot(page, "live-long-call-phone")
