"""The zoom of a session's timeline and waveform, in Debian's chromium against the real
service: at the least width a turn of 2 s was a bar of 8 px that showed no word of its text;
zoomed in, each second is as wide as asked, the waveform's regions stay under their bars,
the second in the middle of the lanes stays there, and a box showing the call's end shows it
still. A width that would not widen a short call is offered disabled. The address keeps the
zoom, for a reload or a link."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Page, expect

from producers.simulator import SimulatedTurn
from tests.browser.conftest import CALLS, HOUR, T0, Viewer, lined_up, screenshot, turn_id_of
from tests.browser.test_waveform import LONG_CALL, publish_recorded

pytestmark = pytest.mark.integration

_FROM_MIDDLE = """(bar) => {
    const box = bar.closest(".call-scroll");
    const label = box.querySelector(".lane-label").getBoundingClientRect().width;
    const b = box.getBoundingClientRect();
    const middle = b.left + label + (box.clientWidth - label) / 2;
    return bar.getBoundingClientRect().left - middle;
}"""
"""How far (px) the bar starts from the middle of the lanes in sight."""
_AT_END = "b => b.scrollWidth - b.scrollLeft - b.clientWidth < 4"


def _bar(page: Page, turn: SimulatedTurn) -> str:
    return f".timeline .turn[data-turn-id='{turn_id_of(turn)}']"


async def _px_per_s(page: Page, turn: SimulatedTurn) -> float:
    width = await page.locator(_bar(page, turn)).evaluate("b => b.getBoundingClientRect().width")
    return float(width) / (turn.end_s - turn.start_s)


async def _text_shown(page: Page, turn: SimulatedTurn) -> float:
    """How much of the bar's text shows, from 0 to 1 (whole)."""
    shown = await page.locator(f"{_bar(page, turn)} .text").evaluate(
        "t => Math.min(1, t.clientWidth / t.scrollWidth)"
    )
    return float(shown)


async def test_zooming_keeps_the_middle_second_and_the_end_in_sight(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """An 11-minute call scrolls at the least width; zoomed from its start, the second that
    was in the middle of the lanes is there still (measured by a bar 5 minutes in)."""
    session_id = "zoom/long call"
    await publish_recorded(viewer.api, session_id, T0 - HOUR, LONG_CALL, tmp_path)
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await lined_up(page, LONG_CALL[0])
    box, later = page.locator(".call-scroll"), LONG_CALL[4]
    assert await box.evaluate("b => b.scrollWidth > b.clientWidth + 1")
    await expect(page.locator("select[name=zoom] option:disabled")).to_have_count(0)
    least = await _px_per_s(page, later)
    assert least < 10, least
    seconds_off = await page.locator(_bar(page, later)).evaluate(_FROM_MIDDLE) / least
    for zoom in (10, 50):
        await page.select_option("select[name=zoom]", str(zoom))
        assert await _px_per_s(page, later) == pytest.approx(zoom, rel=0.02)
        offset = await page.locator(_bar(page, later)).evaluate(_FROM_MIDDLE)
        assert offset / zoom == pytest.approx(seconds_off, abs=0.5), zoom
        await lined_up(page, LONG_CALL[0])
        assert page.url.endswith(f"?zoom={zoom}"), "the address keeps the zoom"

    await page.reload()  # or a link to it: the call is drawn as wide
    await lined_up(page, LONG_CALL[0])
    await expect(page.locator("select[name=zoom]")).to_have_value("50")
    assert await _px_per_s(page, later) == pytest.approx(50, rel=0.02)

    await box.evaluate("b => { b.scrollLeft = b.scrollWidth; }")
    await page.select_option("select[name=zoom]", "100")
    assert await box.evaluate(_AT_END), "the call's end went out of sight"
    await lined_up(page, later)  # the waveform draws the first 10 minutes
    await screenshot(page, "zoomed-100-px-a-second-at-the-end")


async def test_a_short_call_zoomed_shows_its_turns_text_and_offers_only_what_widens_it(
    viewer: Viewer, page: Page
) -> None:
    session_id, _, script, _ = CALLS[1]
    longest = max(script, key=lambda t: t.end_s - t.start_s)
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await lined_up(page, longest)
    fitted = await _px_per_s(page, longest)
    assert 25 < fitted < 50, "the call fits the box at between 25 and 50 px a second"
    disabled = page.locator("select[name=zoom] option:disabled")
    await expect(disabled).to_have_text(["10 px a second", "25 px a second"])
    unzoomed = await _text_shown(page, longest)
    assert unzoomed < 1, "the test's point: a bar shows part of its text"

    await page.select_option("select[name=zoom]", "100")
    assert await _px_per_s(page, longest) == pytest.approx(100, rel=0.02)
    assert await _text_shown(page, longest) == 1
    for turn in script:
        await lined_up(page, turn)
    await screenshot(page, "zoomed-100-px-a-second")

    await page.select_option("select[name=zoom]", "4")
    await expect(page.locator("select[name=zoom] option:checked")).to_have_text("Fit the box")
    assert "zoom" not in page.url, "the least width is the page's own: no need to ask for it"
    assert await _px_per_s(page, longest) == pytest.approx(fitted, rel=0.02)
    await lined_up(page, longest)
