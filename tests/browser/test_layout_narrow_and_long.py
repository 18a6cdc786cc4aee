"""The viewer where room runs short: a long call's timeline at a desktop's width and at a
phone's, and every page on a phone's screen, which none of them widens."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import Page, ViewportSize, expect

from tests.browser.conftest import CALLS, T0, Viewer, screenshot
from tests.integration.api_support import conversation

pytestmark = pytest.mark.integration

DESKTOP = ViewportSize(width=1440, height=900)
PHONE = ViewportSize(width=390, height=844)

_LABELS = """() => {
    const lane = document.querySelector(".lane-gaps .track").getBoundingClientRect();
    return [...document.querySelectorAll(".lane-gaps .gap .label")]
        .filter((label) => getComputedStyle(label).visibility !== "hidden")
        .map((label) => {
            const box = label.getBoundingClientRect();
            const middle = (box.top + box.bottom) / 2;
            const onTop = [box.left + 1, (box.left + box.right) / 2, box.right - 1]
                .every((x) => label.contains(document.elementFromPoint(x, middle)));
            return {left: box.left, right: box.right, text: label.textContent, onTop,
                    lane: [lane.left, lane.right]};
        });
}"""
"""The latency labels shown: where each lies, whether nothing is painted over its ends and
its middle, and where their lane lies."""


async def page_fits(page: Page) -> bool:
    """Whether the page is no wider than the window: it cannot be scrolled sideways."""
    return bool(
        await page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def _misplaced(labels: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the labels shown: one outside its lane, covered, cut, or over the next."""
    wrong = [
        f"{label['text']!r} at {label['left']:.1f}-{label['right']:.1f}, lane {label['lane']}"
        for label in labels
        if label["left"] < label["lane"][0] - 0.5
        or label["right"] > label["lane"][1] + 0.5
        or not label["onTop"]
        or not label["text"].endswith(" ms")
    ]
    ordered = sorted(labels, key=lambda label: label["left"])
    return wrong + [
        f"{a['text']!r} ends at {a['right']:.1f}, past {b['text']!r} at {b['left']:.1f}"
        for a, b in itertools.pairwise(ordered)
        if a["right"] > b["left"]
    ]


async def test_a_long_call_s_latency_labels_keep_to_their_lane_and_apart(
    viewer: Viewer, page: Page
) -> None:
    """220 turns in 11 minutes: a gap every 6 s, a label far wider than its gap. Labels were
    painted over by the next gaps (read "1,36"), and the first and last reached past the lane
    (into its name on a phone)."""
    session_id = "long call/220 turns"
    await viewer.api.publish(conversation(session_id, T0, turns=220))
    await viewer.api.until_projected()
    for size, name, least in ((DESKTOP, "desktop", 10), (PHONE, "phone", 2)):
        await page.set_viewport_size(size)
        await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
        gaps = page.locator(".lane-gaps .gap")
        await expect(gaps).to_have_count(110)
        for title in await gaps.evaluate_all("gs => gs.map((g) => g.title)"):
            assert "response latency 1,000 ms" in title, title
        await page.locator(".timeline").scroll_into_view_if_needed()
        labels = await page.evaluate(_LABELS)
        assert len(labels) >= least, (name, labels)
        assert _misplaced(labels) == [], name
        assert await page_fits(page), name
        await screenshot(page, f"layout-long-call-{name}")


async def test_no_page_is_wider_than_a_phone_s_screen(viewer: Viewer, page: Page) -> None:
    """The sessions and analytics tables widened the page to 774 and 868 px: they scroll in a
    box of their own."""
    await page.set_viewport_size(PHONE)
    session_id = CALLS[0][0]
    for fragment, shown, name in (
        ("/", "table.sessions tbody tr", "list"),
        ("/search?q=you", ".hits .hit", "search"),
        ("/analytics", ".charts canvas", "analytics"),
        (f"/session/{quote(session_id, safe='')}", ".wave-controls", "session"),
    ):
        await page.goto(viewer.at(fragment))
        await expect(page.locator(shown).first).to_be_visible(timeout=20_000)
        assert await page_fits(page), fragment
        for box in await page.locator(".table-scroll").all():
            assert await box.evaluate("b => b.scrollWidth > b.clientWidth"), fragment
        await screenshot(page, f"layout-phone-{name}")
