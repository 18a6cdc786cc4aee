"""The analytics page's range as a bucket is chosen, and its times: UTC, written alike in
its inputs' labels, table, charts and freshness line, whatever the browser's zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import T0, Viewer, screenshot

pytestmark = pytest.mark.integration

NOW = T0 + timedelta(minutes=75, seconds=20)
"""The browser's clock: five minutes after the last of conftest's calls began."""

_DRAWN_TEXTS = """
window.drawnTexts = [];
const fill = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
    window.drawnTexts.push(String(text));
    return fill.call(this, text, ...rest);
};
"""
"""Keeps each text a page draws on a canvas: uPlot draws its axes' ticks there."""

STAMP = re.compile(r"\d\d [A-Z][a-z]{2} \d{4}, \d\d:\d\d:\d\d UTC")
DAY = re.compile(r"\d\d [A-Z][a-z]{2}")
CLOCK = re.compile(r"\d\d:\d\d")
Y_LABELS = {"ms", "per 100"}


async def _in_new_york(page: Page) -> None:
    """Puts ``page`` in a zone that is not UTC (Chromium's own override: a context's zone
    is fixed when it is made), noting what it draws on canvases."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    await page.add_init_script(_DRAWN_TEXTS)


async def _asked_range(page: Page) -> tuple[datetime, datetime]:
    """The range the page asks the API for when Show is pressed."""
    async with page.expect_request(lambda r: "/v1/analytics?" in r.url) as requested:
        await page.click(".filters button[type=submit]")
    query = parse_qs(urlsplit((await requested.value).url).query)
    since, until = (datetime.fromisoformat(query[name][0]) for name in ("since", "until"))
    return since, until


async def test_a_bucket_chosen_shows_the_range_up_to_now_it_reads_well_at(
    viewer: Viewer, page: Page
) -> None:
    """From a day's range, which ends at the coming midnight, the minute asked for the hour
    before that midnight: wholly to come, "No turn in this range"."""
    await page.clock.set_fixed_time(NOW)
    await page.goto(viewer.at("/analytics?bucket=day"))
    await expect(page.locator("table.figures tbody tr").first).to_be_visible()
    for bucket, span, step in (
        ("minute", timedelta(hours=1), timedelta(minutes=1)),
        ("hour", timedelta(days=1), timedelta(hours=1)),
        ("day", timedelta(days=30), timedelta(days=1)),
    ):
        await page.select_option("select[name=bucket]", bucket)
        since, until = await _asked_range(page)
        assert until - since == span, bucket
        assert NOW < until <= NOW + step, (bucket, until)
        await expect(page.locator("table.figures tbody tr").first).to_be_visible()
        await screenshot(page, f"analytics-range-by-the-{bucket}")
    await expect(page.locator(".empty")).to_have_count(0)


async def test_the_analytics_page_writes_its_times_in_utc_alike(viewer: Viewer, page: Page) -> None:
    """Its axes read "12pm 12/6/26" in the browser's zone, its table "07 Dec 2026, 11:00:00
    UTC", its inputs the browser's zone: a day bucket, a day in UTC, began at 7 pm."""
    await _in_new_york(page)
    await page.clock.set_fixed_time(NOW)
    await page.goto(viewer.at("/analytics"))
    await expect(page.locator(".charts canvas").first).to_be_visible()
    await expect(page.locator(".filters")).to_contain_text("From (UTC)")
    await expect(page.locator(".filters")).to_contain_text("Until (UTC)")
    until = NOW.replace(minute=0, second=0) + timedelta(hours=1)
    await expect(page.locator("input[name=until]")).to_have_value(
        re.compile(rf"^{until:%Y-%m-%dT%H:%M}(:00)?$")
    )
    first = page.locator("table.figures tbody tr").first
    bucket = datetime.fromisoformat(str(await first.get_attribute("data-bucket")))
    await expect(first.locator("td").first).to_have_text(
        bucket.astimezone(UTC).strftime("%d %b %Y, %H:%M:%S UTC")
    )
    await expect(page.locator(".freshness")).to_have_text(re.compile(rf"^As of {STAMP.pattern}"))
    ticks = await _ticks(page)
    assert ticks
    assert all(CLOCK.fullmatch(t) or DAY.fullmatch(t) for t in ticks), ticks
    hours = [int(t[:2]) for t in ticks if CLOCK.fullmatch(t)]
    apart = (hours[1] - hours[0]) % 24
    assert apart > 1, hours
    assert all(hour % apart == 0 for hour in hours), hours  # UTC's 00:00, 03:00…, not New York's
    await page.locator(".charts .u-over").first.hover()
    await expect(page.locator(".u-legend .u-series").first).to_contain_text(
        re.compile(rf"Bucket\s*{STAMP.pattern}")
    )
    await screenshot(page, "analytics-in-utc")

    await page.evaluate("window.drawnTexts = []")
    await page.goto(viewer.at("/analytics?bucket=day"))
    await expect(page.locator(".charts canvas").first).to_be_visible()
    ticks = await _ticks(page)
    assert ticks
    assert all(DAY.fullmatch(t) for t in ticks), ticks
    await screenshot(page, "analytics-in-utc-by-the-day")


async def _ticks(page: Page) -> list[str]:
    """What the charts drew on their x axes (uPlot draws each line of a tick apart): all
    they drew but the y axes' labels and numbers."""
    drawn: list[str] = await page.evaluate("window.drawnTexts")
    return [t for t in drawn if t not in Y_LABELS and not re.fullmatch(r"[\d,.]+", t)]
