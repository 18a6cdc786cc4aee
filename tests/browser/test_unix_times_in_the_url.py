"""Times pasted into the URL as Unix times: seconds (maybe with a fraction) or, 12 digits
and more, milliseconds, sent to the API as ISO 8601 in UTC and said on the page; a number
too short to be one is still named as ignored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import T0, Viewer, screenshot
from tests.browser.test_list_filters_and_search import query_sent

pytestmark = pytest.mark.integration


async def test_unix_seconds_and_milliseconds_are_read_as_utc_and_said(
    viewer: Viewer, page: Page
) -> None:
    """``?since=1764547200`` was ignored as "wants a date or a time, ISO 8601"."""
    until = T0 + timedelta(minutes=30)
    since_s, until_ms = int(T0.timestamp()), int(until.timestamp() * 1000)
    since_iso, until_iso = f"{T0:%Y-%m-%dT%H:%M:%SZ}", f"{until:%Y-%m-%dT%H:%M:%SZ}"
    asked = await query_sent(
        page, "/v1/sessions", page.goto(viewer.at(f"/?since={since_s}&until={until_ms}"))
    )
    assert (asked["since"], asked["until"]) == ([since_iso], [until_iso])
    await expect(page.locator(".bad-params")).to_be_hidden()
    read = page.locator(".read-params")
    await expect(read).to_contain_text(f"since={since_s} (Unix seconds) as {since_iso}")
    await expect(read).to_contain_text(f"until={until_ms} (Unix milliseconds) as {until_iso}")
    await expect(page.locator("table.sessions tbody tr")).to_have_count(2)
    assert await page.input_value("input[name=since]"), "the form shows the time read"
    await screenshot(page, "unix-times-list")

    asked = await query_sent(
        page, "/v1/search", page.goto(viewer.at(f"/search?q=you&since={since_s}.25&until=2025"))
    )
    assert asked["since"] == [f"{T0:%Y-%m-%dT%H:%M:%S}.250Z"]
    assert "until" not in asked
    await expect(read).to_contain_text(f"since={since_s}.25 (Unix seconds) as ")
    await expect(page.locator(".bad-params")).to_contain_text("until=2025 (wants ")
    await expect(page.locator(".bad-params")).to_contain_text("or a Unix time in seconds")

    asked = await query_sent(
        page, "/v1/analytics", page.goto(viewer.at(f"/analytics?since={since_s}"))
    )
    assert asked["since"] == [since_iso]
    await expect(read).to_contain_text(f"since={since_s} (Unix seconds) as {since_iso}")
    await screenshot(page, "unix-times-analytics")
