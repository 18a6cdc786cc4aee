"""A real browser for the viewer's tests: Debian's chromium driven by Playwright (its own
browser download cannot run here), and where the tests keep their screenshots."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from viewer.mount import NODE_MODULES

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",  # a clip plays after its fetch, not at the click
]
MISSING = (
    f"no chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)"
    if not CHROMIUM.exists()
    else None
)
LIBRARIES = NODE_MODULES.is_dir()

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
"""Screenshots of each page the tests saw (ignored by git; CI can keep the folder)."""


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    if MISSING:
        pytest.skip(MISSING)
    assert LIBRARIES, "the viewer's libraries are missing: make setup (npm ci in viewer/)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest_asyncio.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page; a script error on it fails the test."""
    context = await browser.new_context(viewport={"width": 1440, "height": 960})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert not errors, errors


async def screenshot(page: Page, name: str) -> Path:
    """Keeps what the page shows under ``ARTIFACTS``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
