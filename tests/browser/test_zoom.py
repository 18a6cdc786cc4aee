"""The zoom of a session's timeline and waveform, in Debian's chromium against the real
service: at the least width a turn of 2 s was a bar of 8 px that showed no word of its text;
zoomed in, each second is as wide as asked, the waveform's regions stay under their bars,
and the second in the middle of the box stays there."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import CALLS, Viewer, screenshot, turn_id_of
from tests.browser.test_waveform import lined_up

pytestmark = pytest.mark.integration

_MIDDLE = """b => (b.scrollLeft + b.clientWidth / 2) / b.scrollWidth"""
"""Where the middle of the box lies, as a fraction of what scrolls in it."""


async def _px_per_s(page: Page, turn_id: str, seconds: float) -> float:
    width = await page.locator(f".timeline .turn[data-turn-id='{turn_id}']").evaluate(
        "b => b.getBoundingClientRect().width"
    )
    return float(width) / seconds


async def _text_shown(page: Page, turn_id: str) -> float:
    """How much of the bar's text shows, from 0 to 1 (whole)."""
    shown = await page.locator(f".timeline .turn[data-turn-id='{turn_id}'] .text").evaluate(
        "t => Math.min(1, t.clientWidth / t.scrollWidth)"
    )
    return float(shown)


async def test_zooming_in_widens_bars_and_waveform_together_around_the_middle(
    viewer: Viewer, page: Page
) -> None:
    session_id, _, script, _ = CALLS[1]
    longest = max(script, key=lambda t: t.end_s - t.start_s)
    seconds = longest.end_s - longest.start_s
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await lined_up(page, longest)
    box = page.locator(".call-scroll")
    assert not await box.evaluate("b => b.scrollWidth > b.clientWidth + 1"), "fits at first"
    fitted = await _px_per_s(page, turn_id_of(longest), seconds)
    unzoomed = await _text_shown(page, turn_id_of(longest))

    for zoom in (50, 100):
        before = await box.evaluate(_MIDDLE)
        await page.select_option("select[name=zoom]", str(zoom))
        assert await _px_per_s(page, turn_id_of(longest), seconds) == pytest.approx(zoom, rel=0.02)
        assert await box.evaluate(_MIDDLE) == pytest.approx(before, abs=0.01)
        for turn in script:
            await lined_up(page, turn)
        await screenshot(page, f"zoomed-{zoom}-px-a-second")
        await box.evaluate("b => { b.scrollLeft = b.scrollWidth / 4; }")
    shown = await _text_shown(page, turn_id_of(longest))
    assert shown == 1 or shown > unzoomed, (shown, unzoomed)

    await page.select_option("select[name=zoom]", "4")
    await expect(page.locator("select[name=zoom] option:checked")).to_have_text("Fit")
    assert await _px_per_s(page, turn_id_of(longest), seconds) == pytest.approx(fitted, rel=0.02)
    assert not await box.evaluate("b => b.scrollWidth > b.clientWidth + 1")
    await lined_up(page, longest)
