"""Produce-to-page: a turn of a call in progress, from its publish to its bar on the session
page in Debian's chromium, while another process publishes other calls at 5k events/s.

The issue's target is p99 <= 1.5 s; the figure is printed, and only a generous bound (5 s)
asserted. The page notes when each bar first shows its text (a MutationObserver, on the
machine's clock), so Playwright's polling adds nothing to what is measured.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from playwright.async_api import Page, expect

from bench.query_load import Publisher
from schemas import Topics
from tests.browser.conftest import Viewer, screenshot
from tests.integration.api_support import conversation, live_api, now
from tests.integration.live_support import OTHER_TRAFFIC_EPS, hold_latencies

pytestmark = pytest.mark.integration

TURNS = 40

_NOTE_BARS = """() => {
    window.shownAt = {};
    const note = () => {
        for (const bar of document.querySelectorAll(".timeline .turn[data-turn-id]")) {
            const id = bar.dataset.turnId;
            if (!(id in window.shownAt) && bar.textContent.includes("sentence number")) {
                window.shownAt[id] = Date.now();
            }
        }
    };
    new MutationObserver(note).observe(document.body, {
        subtree: true, childList: true, characterData: true, attributes: true,
    });
    note();
}"""


async def test_a_live_call_s_page_shows_each_turn_soon_after_it_is_published(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str, page: Page
) -> None:
    session_id = "live/measured 1"
    call = conversation(session_id, now() - timedelta(minutes=5), turns=TURNS + 1)
    latencies: list[float] = []
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        await api.publish(call[:2])
        await api.until_projected()
        base = str(api.http.base_url).rstrip("/")
        await page.goto(f"{base}/#/session/{quote(session_id, safe='')}")
        await expect(page.locator(".timeline .turn")).to_have_count(1)
        await page.evaluate(_NOTE_BARS)
        await page.evaluate("window.notReloaded = true")
        with Publisher(kafka_bootstrap, topics, OTHER_TRAFFIC_EPS) as other_calls:
            await asyncio.sleep(2)  # the other traffic is under way
            for n in range(1, TURNS + 1):
                published_ms = time.time() * 1000
                await api.publish(call[2 * n : 2 * n + 2])
                shown_ms = await _shown(page, f"turn-{n}")
                latencies.append((shown_ms - published_ms) / 1000)
                await asyncio.sleep(0.1)
        assert await page.evaluate("window.notReloaded") is True
        await expect(page.locator(".timeline .turn")).to_have_count(TURNS + 1)
        # The summary's counts follow the call too, though it has not ended.
        await expect(page.locator(".summary")).to_contain_text(
            "21 user · 20 assistant", timeout=15_000
        )
        await screenshot(page, "live-measured")
    hold_latencies("produce-to-page", latencies, other_calls.eps)


_SCROLL = """(list) => ({
    top: list.scrollTop, atEnd: list.scrollHeight - list.scrollTop - list.clientHeight < 4,
})"""
"""Where the transcript is scrolled to, and whether it shows its end."""


async def test_the_transcript_follows_the_newest_turn_unless_scrolled_up(
    viewer: Viewer, page: Page
) -> None:
    """Its scroll stayed at the top while a live call's transcript grew past its height: it
    follows the newest turn, and leaves a user who scrolled up where they are."""
    session_id = "live/followed 1"
    call = conversation(session_id, now() - timedelta(minutes=3), turns=40)
    await viewer.api.publish(call[:10])
    await viewer.api.until_projected()
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    transcript, entries = page.locator(".transcript"), page.locator(".transcript .entry")
    await expect(entries).to_have_count(5)
    await viewer.api.publish(call[10:60])
    await expect(entries).to_have_count(30, timeout=30_000)
    followed = await transcript.evaluate(_SCROLL)
    assert followed["top"] > 0, "the transcript is too short to scroll"
    assert followed["atEnd"], followed
    await expect(entries.last).to_be_in_viewport()
    await screenshot(page, "transcript-follows")

    await transcript.hover()
    await page.mouse.wheel(0, -400)
    await page.wait_for_function(
        "(top) => document.querySelector('.transcript').scrollTop < top", arg=followed["top"]
    )
    await page.wait_for_timeout(500)  # the wheel's smooth scroll has settled
    scrolled = await transcript.evaluate(_SCROLL)
    await viewer.api.publish(call[60:])
    await expect(entries).to_have_count(40, timeout=30_000)
    assert await transcript.evaluate(_SCROLL) == scrolled
    await screenshot(page, "transcript-scrolled-up")


async def _shown(page: Page, turn_id: str, within_s: float = 30) -> float:
    """When the page first showed the turn's bar with its text (ms since the epoch)."""
    deadline = time.monotonic() + within_s
    while (at := await page.evaluate("(id) => window.shownAt[id]", turn_id)) is None:
        assert time.monotonic() < deadline, f"{turn_id} never shown"
        await asyncio.sleep(0.05)
    return float(at)
