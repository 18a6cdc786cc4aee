"""A real browser for the viewer's tests: Debian's chromium driven by Playwright (its own
browser download cannot run here), where the tests keep their screenshots, and the viewer
they open: the real service (a broker, live projectors into the embedded engine) serving
simulated calls with both tracks recorded as WAV chunks."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from audio.stores import open_chunk_store
from producers.simulator import SimulatedTurn, script_call
from schemas import Topics
from schemas.models import Event
from tests.integration.api_support import Api, live_api
from tests.integration.audio_support import recorded_call
from tests.integration.audio_support import turn_id_of as turn_id_of  # for the browser tests
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


HOUR = timedelta(hours=1)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 2 * HOUR
CALLS = (
    ("rooms/7 support", "bot-a", script_call(random.Random(1), 6), T0 + timedelta(minutes=5)),
    ("call-b", "bot-b", script_call(random.Random(2), 8), T0 + timedelta(minutes=20)),
    ("call-c", "bot-a", script_call(random.Random(3), 8), T0 + timedelta(minutes=70)),
)
"""Three calls of two bots in two hours; the first (its id holds '/' and a space) has a
barge-in."""


@dataclass
class Viewer:
    api: Api
    url: str

    def at(self, fragment: str) -> str:
        return f"{self.url}/#{fragment}"


@pytest.fixture
async def viewer(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str, tmp_path: Path
) -> AsyncIterator[Viewer]:
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        store = open_chunk_store(tmp_path.as_uri())
        events: list[Event] = []
        for session_id, bot_id, script, started in CALLS:
            events += [
                e.model_copy(update={"bot_id": bot_id})
                for e in recorded_call(session_id, started, script, store)
            ]
        await api.publish(events)
        await api.until_projected()
        yield Viewer(api, str(api.http.base_url).rstrip("/"))


async def lined_up(page: Page, turn: SimulatedTurn) -> None:
    """The turn's region on the waveform starts where its bar starts on the timeline (a
    short bar is wider than its turn: its padding). Measured again until they line up or 20 s
    pass: a live call's page draws its timeline anew as turns come, and a bar measured while
    it is replaced has no box."""
    turn_id = turn_id_of(turn)
    bar = page.locator(f".lane-{turn.role} .turn[data-turn-id='{turn_id}']")
    region = page.locator(f"[part~='{turn_id}']")
    await expect(region).to_have_count(1, timeout=20_000)
    bar_box = region_box = None
    for _ in range(200):
        bar_box, region_box = await bar.bounding_box(), await region.bounding_box()
        if bar_box and region_box and abs(region_box["x"] - bar_box["x"]) < 2:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{turn_id}: the region {region_box} is not under the bar {bar_box}")
