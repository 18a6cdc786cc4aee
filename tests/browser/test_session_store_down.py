"""The viewer when the store does not answer, in Debian's chromium: the service stopped under
an open page (its live call, its players and the other pages say so), a stream that cannot
be reached and comes back, and a stream that refuses the page's token.

A stream that cannot be reached is one whose requests the browser aborts (``page.route``):
the store is real, the network to it is what fails."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from functools import partial
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Page, Route, expect

from schemas import Topics
from tests.browser.conftest import Viewer, screenshot
from tests.browser.test_waveform import chunks_in, live_call
from tests.integration.api_support import Api, conversation, live_api, now

pytestmark = pytest.mark.integration

STREAM = "**/stream"


def _unanswered(base: str) -> str:
    """What the page says of a store that does not answer at ``base``."""
    return f"the store at {base} does not answer (is `tstore serve` running?)"


def _streams(requests: list[str]) -> int:
    return sum(url.endswith("/stream") for url in requests)


async def _abort(route: Route) -> None:
    await route.abort()


OwnStore = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture
def own_store(kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str) -> OwnStore:
    """A service of the test's own (``live_api``'s keywords), to stop, or to start with a
    token."""
    return partial(live_api, kafka_bootstrap, topics, clickhouse_dsn, database)


async def test_a_live_call_s_page_says_so_when_the_store_stops(
    own_store: OwnStore, tmp_path: Path, page: Page
) -> None:
    """``tstore serve`` stops under a live call's page: the page says its live updates are
    lost and why, "Play call" (its audio fetched anew, as after a live redraw) and a turn's
    clip say they cannot play (no uncaught error: the ``page`` fixture fails on one), and
    the list and analytics pages say the store does not answer, not "Failed to fetch"."""
    session_id = "live/stopped 1"
    began, script, turns, chunks = live_call(session_id, 9, 8, tmp_path)
    cut_s = script[4].start_s
    async with own_store() as api:
        await api.publish(turns[:8] + chunks_in(chunks, began, float("-inf"), cut_s))
        await api.until_projected()
        base = str(api.http.base_url).rstrip("/")
        await page.goto(f"{base}/#/session/{quote(session_id, safe='')}")
        regions = page.locator("[part='regions-container'] > div")
        await expect(regions).to_have_count(4, timeout=20_000)
        await api.publish(turns[8:] + chunks_in(chunks, began, cut_s, float("inf")))
        # Drawn anew from the audio heard: playing fetches the window again.
        await expect(regions).to_have_count(len(script), timeout=20_000)
        await expect(page.locator("#error")).to_be_hidden()

    error = page.locator("#error")
    await expect(error).to_have_text(
        f"Live updates lost: {_unanswered(base)}; retrying…", timeout=15_000
    )
    await page.click(".wave-controls .play")
    await expect(page.locator(".waveform [role=status]")).to_have_text(
        f"Cannot play the call: {_unanswered(base)}"
    )
    await expect(page.locator(".wave-controls .play")).to_have_text("Play call")
    await screenshot(page, "store-stopped-session")
    await page.locator(".transcript .entry button").first.click()
    await expect(page.locator(".clip-note")).to_have_text(
        f"Cannot play this turn: {_unanswered(base)}"
    )
    for fragment, name in (
        ("#/", "store-stopped-list"),
        ("#/analytics", "store-stopped-analytics"),
    ):
        await page.evaluate("(fragment) => { location.hash = fragment; }", fragment)
        await expect(error).to_have_text(_unanswered(base))
        await screenshot(page, name)


async def test_live_updates_lost_are_said_until_the_stream_comes_back(
    viewer: Viewer, page: Page
) -> None:
    """The stream cannot be reached: the page says its updates are lost and tries again, and
    once the stream answers it says nothing more and the call's new turns come."""
    session_id = "live/unreachable 1"
    call = conversation(session_id, now() - timedelta(seconds=30), turns=4)
    await viewer.api.publish(call[:4])
    await viewer.api.until_projected()
    await page.route(STREAM, _abort)
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    error = page.locator("#error")
    await expect(error).to_have_text(f"Live updates lost: {_unanswered(viewer.url)}; retrying…")
    await expect(page.locator(".timeline .turn")).to_have_count(2)
    await screenshot(page, "live-updates-lost")
    await page.unroute(STREAM)
    await viewer.api.publish(call[4:])
    await expect(page.locator(".timeline .turn")).to_have_count(4, timeout=20_000)
    await expect(error).to_be_hidden()


async def test_the_token_message_says_where_to_enter_it_and_a_refused_stream_stops(
    own_store: OwnStore, page: Page
) -> None:
    """Behind ``TSTORE_API_TOKEN``, no token and a wrong one each say where the token goes;
    a live call's stream refused the token (changed in another tab, say) says so and is not
    asked again and again."""
    token = "viewer-token-77ab"
    session_id = "live/token 1"
    async with own_store(token=token) as api:
        await api.publish(conversation(session_id, now() - timedelta(seconds=30), turns=4)[:4])
        await api.until_projected()
        base = str(api.http.base_url).rstrip("/")
        await page.goto(f"{base}/#/")
        error = page.locator("#error")
        required = "a valid bearer token is required (TSTORE_API_TOKEN)."
        await expect(error).to_have_text(
            f"{required} Enter it in the “API token” field at the top right of the page."
        )
        await screenshot(page, "token-missing")
        for given in ("not-the-token", token):
            await page.locator("#token").fill(given)
            await page.locator("#token").press("Enter")
            if given != token:
                await expect(error).to_contain_text(
                    f"{required} The one in the “API token” field at the top right of the "
                    "page is not the store's"
                )
                await screenshot(page, "token-wrong")
        await expect(page.locator("table.sessions tbody tr")).to_have_count(1)
        await expect(error).to_be_hidden()

        await page.route(STREAM, _abort)
        await page.goto(f"{base}/#/session/{quote(session_id, safe='')}")
        await expect(error).to_contain_text("Live updates lost")
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        await page.evaluate("localStorage.setItem('tstore.token', 'changed elsewhere')")
        await page.unroute(STREAM)
        await expect(error).to_have_text(
            f"Live updates stopped: {required} The one in the “API token” field at the top "
            "right of the page is not the store's: enter its TSTORE_API_TOKEN there.",
            timeout=20_000,
        )
        refused = _streams(asked)
        await asyncio.sleep(6)  # longer than the page waits before its next try
        assert _streams(asked) == refused, f"the refused stream was asked again: {asked}"
        await screenshot(page, "live-updates-token")
