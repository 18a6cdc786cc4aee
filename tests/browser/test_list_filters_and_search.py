"""The filters of the sessions list and of the search: what the page takes from the URL (what
the API takes), what it says of the rest, and what its forms ask."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import CALLS, T0, Viewer, screenshot

pytestmark = pytest.mark.integration


async def query_sent(page: Page, route: str, act: Any) -> dict[str, list[str]]:
    """The query the page sends to ``route`` of the API once ``act`` is awaited."""
    async with page.expect_request(lambda r: f"{route}?" in r.url) as requested:
        await act
    return parse_qs(urlsplit((await requested.value).url).query)


async def test_a_parameter_the_api_would_refuse_is_named_as_ignored_and_why(
    viewer: Viewer, page: Page
) -> None:
    """The note said "Left out of the URL" of parameters the URL still held, and a bot given
    twice, which the API refuses (422), was taken as one of them."""
    asked = await query_sent(
        page,
        "/v1/sessions",
        page.goto(viewer.at("/?since=garbage&bot_id=bot-a&bot_id=bot-b&min_turns=2&bot=x")),
    )
    assert asked == {"min_turns": ["2"], "limit": ["50"]}
    note = page.locator(".bad-params")
    await expect(note).to_contain_text("Ignored, though still in the URL: since=garbage (wants ")
    await expect(note).to_contain_text("bot_id=bot-a, bot-b (given 2 times: the API takes one)")
    await expect(note).to_contain_text("bot=x (not a parameter of this page)")
    listed = await viewer.api.ok("/v1/sessions", min_turns="2")
    await expect(page.locator("table.sessions tbody tr")).to_have_count(len(listed["items"]))
    await screenshot(page, "list-ignored-parameters")

    await page.goto(viewer.at("/search?q=you&role=user&role=assistant"))
    await expect(note).to_contain_text("role=user, assistant (given 2 times: the API takes one)")
    await expect(page.locator(".hits .hit").first).to_be_visible()


async def test_a_date_alone_and_a_time_without_its_zone_are_taken_as_the_api_takes_them(
    viewer: Viewer, page: Page
) -> None:
    """A date alone is its midnight in UTC, a time naming no zone is UTC: the page refused
    both, which the API takes."""
    day, until = T0.date(), T0 + timedelta(minutes=30)
    asked = await query_sent(
        page, "/v1/sessions", page.goto(viewer.at(f"/?since={day}&until={until:%Y-%m-%dT%H:%M}"))
    )
    assert (asked["since"], asked["until"]) == (
        [f"{day}T00:00:00Z"],
        [f"{until:%Y-%m-%dT%H:%M:%SZ}"],
    )
    await expect(page.locator(".bad-params")).to_be_hidden()
    listed = await viewer.api.ok("/v1/sessions", since=str(day), until=f"{until:%Y-%m-%dT%H:%M}")
    assert len(listed["items"]) == 2, "conftest's first two calls begin in the range"
    await expect(page.locator("table.sessions tbody tr")).to_have_count(2)


async def test_the_search_page_filters_by_bot_role_and_time(viewer: Viewer, page: Page) -> None:
    """The API's filters of a search (bot, role, since, until) were only to be had by editing
    the URL, and since and until were never sent."""
    await page.goto(viewer.at("/search?q=you"))
    everything = await viewer.api.ok("/v1/search", q="you")
    await expect(page.locator(".hits .hit")).to_have_count(len(everything["items"]))
    since = T0 + timedelta(minutes=30)
    offset_min = await page.evaluate("(at) => new Date(at).getTimezoneOffset()", since.isoformat())
    await page.fill("input[name=bot_id]", "bot-a ")
    await page.select_option("select[name=role]", "assistant")
    await page.fill(
        "input[name=since]", f"{since - timedelta(minutes=offset_min):%Y-%m-%dT%H:%M:%S}"
    )
    asked = await query_sent(page, "/v1/search", page.click(".filters button[type=submit]"))
    filters = {"bot_id": "bot-a", "role": "assistant", "since": f"{since:%Y-%m-%dT%H:%M:%SZ}"}
    assert asked == {"q": ["you"], **{name: [value] for name, value in filters.items()}}
    found = await viewer.api.ok("/v1/search", q="you", **filters)
    assert 0 < len(found["items"]) < len(everything["items"])
    hits = page.locator(".hits .hit.role-assistant")
    await expect(hits).to_have_count(len(found["items"]))
    await expect(hits.locator(".meta")).to_contain_text([CALLS[2][0]] * len(found["items"]))
    await screenshot(page, "search-filtered")

    await page.click(".filters .reset")
    await expect(page).to_have_url(viewer.at("/search?q=you"))
    await expect(page.locator(".hits .hit")).to_have_count(len(everything["items"]))
    assert await page.input_value("input[name=q]") == "you"
    assert await page.input_value("input[name=bot_id]") == ""


async def test_the_list_trims_its_bot_and_clear_empties_what_was_typed(
    viewer: Viewer, page: Page
) -> None:
    """ "bot-a " found nothing; Clear on the unfiltered list left what was typed."""
    await page.goto(viewer.at("/"))
    await page.fill("input[name=bot_id]", "bot-a ")
    await page.click(".filters button[type=submit]")
    await expect(page).to_have_url(viewer.at("/?bot_id=bot-a"))
    of_a = await viewer.api.ok("/v1/sessions", bot_id="bot-a")
    await expect(page.locator("table.sessions tbody tr")).to_have_count(len(of_a["items"]))

    await page.goto(viewer.at("/"))
    await page.fill("input[name=language]", "en")
    await page.fill("input[name=min_turns]", "3")
    await page.select_option("select[name=state]", "sealed")
    await page.click(".filters .reset")
    for field in ("input[name=language]", "input[name=min_turns]", "select[name=state]"):
        assert await page.input_value(field) == "", field
    await expect(page.locator("table.sessions tbody tr")).to_have_count(len(CALLS))
    await screenshot(page, "list-cleared")


async def test_the_header_s_search_box_holds_the_words_of_the_search_page_only(
    viewer: Viewer, page: Page
) -> None:
    """Kept on the other pages, the words read as a filter of what they show."""
    box = "#search input[name=q]"
    await page.goto(viewer.at("/search?q=you"))
    await expect(page.locator(box)).to_have_value("you")
    for other in ("/", "/analytics"):
        await page.goto(viewer.at(other))
        await expect(page.locator(box)).to_have_value("")
