"""The session page's waveform in Debian's chromium, against the real service: a call longer
than the 10 minutes the API cuts at once, a link to a turn, and a live call's waveform as its
audio comes."""

from __future__ import annotations

import asyncio
import math
import random
import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.async_api import Page, expect

from audio.stores import open_chunk_store
from producers.simulator import SimulatedTurn, script_call
from schemas import Role
from schemas.models import ChunkReady, Event
from tests.browser.conftest import CALLS, HOUR, T0, Viewer, lined_up, screenshot, turn_id_of
from tests.events import ended
from tests.integration.api_support import Api, now
from tests.integration.audio_support import recorded_call

pytestmark = pytest.mark.integration


REFRESH_S = 3.0
"""The page's ``WAVEFORM_REFRESH_MS``: a live call's waveform is drawn anew at most this often."""


def _chunk_start_s(chunk: ChunkReady, began: datetime) -> float:
    at = chunk.recording_started_at + timedelta(seconds=chunk.start_sample / chunk.sample_rate)
    return (at - began).total_seconds()


def chunks_in(events: list[Event], began: datetime, since_s: float, until_s: float) -> list[Event]:
    """The chunks of ``events`` that start in that span of the call."""
    return [
        e
        for e in events
        if isinstance(e, ChunkReady) and since_s <= _chunk_start_s(e, began) < until_s
    ]


class LiveCall(NamedTuple):
    """A call begun a minute ago, its audio in chunks of a second: a live call's page gets
    new audio with each turn published with its chunks."""

    began: datetime
    script: list[SimulatedTurn]
    turns: list[Event]
    chunks: list[Event]


def live_call(session_id: str, seed: int, turns: int, folder: Path) -> LiveCall:
    script = script_call(random.Random(seed), turns)
    began = now() - timedelta(minutes=1)
    store = open_chunk_store(folder.as_uri())
    events = recorded_call(
        session_id, began, script, store, chunk_s={"user": 1.0, "assistant": 1.0}
    )
    return LiveCall(began, script, events[: 2 * len(script)], events[2 * len(script) :])


def _recording(url: str) -> bool:
    """Whether the request asks for the session's recording (not a turn's clip)."""
    return "/audio?" in url and "/turns/" not in url


def _from_ms(url: str, drawn: list[int]) -> None:
    """Notes the window's start of a request for the session's recording."""
    if _recording(url):
        drawn.append(int(parse_qs(urlsplit(url).query)["from_ms"][0]))


LONG_CALL = [
    replace(t, start_s=t.start_s + shift, end_s=t.end_s + shift)
    for t, shift in zip(script_call(random.Random(5), 6), [0, 0, 0, 0, 300, 660], strict=True)
]
"""A call of 11 minutes: four turns at its start, one at 5 minutes, one past 10."""
CHUNK_S = 20.0


def _silent_chunks(script: list[SimulatedTurn]) -> frozenset[tuple[Role, int]]:
    """The chunks (of ``CHUNK_S``) in which their speaker says nothing: left out, so that a
    long call's audio costs only its turns."""
    chunks = math.ceil((script[-1].end_s + 0.5) / CHUNK_S)
    said = {
        (t.role, n)
        for t in script
        for n in range(int(t.start_s // CHUNK_S), int(t.end_s // CHUNK_S) + 1)
    }
    roles: tuple[Role, ...] = ("user", "assistant")
    return frozenset((r, n) for r in roles for n in range(chunks) if (r, n) not in said)


async def publish_recorded(
    api: Api, session_id: str, began: datetime, script: list[SimulatedTurn], folder: Path
) -> int:
    """Publishes the call (not its end) and says how many events it has."""
    chunk_s: dict[Role, float] = {"user": CHUNK_S, "assistant": CHUNK_S}
    store = open_chunk_store(folder.as_uri())
    skip = _silent_chunks(script)
    events = recorded_call(session_id, began, script, store, chunk_s=chunk_s, skip=skip)
    await api.publish(events)
    await api.until_projected()
    return len(events)


async def test_a_call_longer_than_10_minutes_is_drawn_10_minutes_at_a_time_in_the_timeline_s_scale(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """The API gives 10 minutes of audio at a time: the waveform draws such a window where
    it falls in the call, lined up with the turns' bars, and the buttons beside it draw the
    next or the one before, and a link to a turn opens its window. A call in progress opens
    at its latest 10 minutes, and keeps them on screen when it ends."""
    session_id = "long/call 1"
    await publish_recorded(viewer.api, session_id, T0 - HOUR, LONG_CALL, tmp_path / "ended")
    drawn: list[int] = []
    page.on("request", lambda r: _from_ms(r.url, drawn))
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    regions = page.locator("[part='regions-container'] > div")
    await expect(regions).to_have_count(5, timeout=20_000)
    assert drawn == [0]
    for turn in LONG_CALL[:5]:
        await lined_up(page, turn)
    await expect(page.locator(".wave-controls .earlier")).to_be_hidden()
    await screenshot(page, "long-call")
    await page.click(".wave-controls .later")
    await expect(regions).to_have_count(1, timeout=20_000)
    assert drawn == [0, 600_000]
    await lined_up(page, LONG_CALL[5])
    await expect(page.locator(".wave-controls .later")).to_be_hidden()
    await screenshot(page, "long-call-later")
    linked = f"/session/{quote(session_id, safe='')}?turn={turn_id_of(LONG_CALL[5])}"
    await page.goto(viewer.at(linked))
    await expect(regions).to_have_count(1, timeout=20_000)
    assert drawn[2:] == [600_000], drawn
    del drawn[:]

    live_id = "long/live 1"
    began = now() - timedelta(seconds=LONG_CALL[-1].end_s + 20)
    count = await publish_recorded(viewer.api, live_id, began, LONG_CALL, tmp_path / "live")
    await page.goto(viewer.at(f"/session/{quote(live_id, safe='')}"))
    await expect(page.locator(".summary .badge")).to_have_text("open")
    await lined_up(page, LONG_CALL[5])
    assert drawn == [600_000], drawn
    # The end draws the waveform anew, its regions made anew: the old one, still there while
    # the audio comes, vanishes under a test that measures it.
    await regions.evaluate_all("(all) => all.forEach((r) => r.setAttribute('data-old', ''))")
    async with page.expect_request(lambda r: _recording(r.url), timeout=20_000):
        await viewer.api.publish([ended(count, live_id)])
    await expect(page.locator(".summary .badge")).not_to_have_text("open")
    redrawn = page.locator("[part='regions-container'] > div:not([data-old])")
    await expect(redrawn).to_have_count(1, timeout=20_000)
    await expect(regions).to_have_count(1)
    await lined_up(page, LONG_CALL[5])
    assert set(drawn) == {600_000}, f"the ended call's waveform went back to its start: {drawn}"


async def _keeps_the_link(page: Page, turn: SimulatedTurn, regions: int) -> None:
    """The page opened at a link to ``turn``, with ``regions`` turns in its window: once the
    waveform is loaded (its regions drawn, the player given its audio), the turn's entry and
    bar are still highlighted and the waveform's cursor stands at the turn's start."""
    turn_id = turn_id_of(turn)
    await expect(page.locator("[part='regions-container'] > div")).to_have_count(
        regions, timeout=20_000
    )
    await lined_up(page, turn)
    await page.wait_for_timeout(1000)  # the player's own events, once it has the audio
    entry = page.locator(f".transcript .entry[data-turn-id='{turn_id}']")
    await expect(entry).to_have_class(re.compile(r"\bcurrent\b"), timeout=1)
    bar = page.locator(f".lane-{turn.role} .turn[data-turn-id='{turn_id}']")
    await expect(bar).to_have_class(re.compile(r"\bcurrent\b"), timeout=1)
    await expect(page.locator(".wave-controls .clock")).to_have_text(
        await entry.locator(".when").inner_text()
    )


async def test_a_link_to_a_turn_keeps_it_highlighted_once_the_waveform_is_loaded(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """The waveform's cursor started at its window's start and the page highlighted the turn
    under it (none, past 10 minutes) instead of the linked one: it starts at the linked
    turn's, in a short call, in a long call's first window, and past its first 10 minutes."""
    session_id, _, script, _ = CALLS[1]
    linked = script[3]  # no turn under its start but itself, none at the call's start
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}?turn={turn_id_of(linked)}"))
    await _keeps_the_link(page, linked, len(script))
    await screenshot(page, "linked-turn")

    long_id = "long/linked 1"
    await publish_recorded(viewer.api, long_id, T0 - HOUR, LONG_CALL, tmp_path / "long")
    for turn, regions in ((LONG_CALL[4], 5), (LONG_CALL[5], 1)):
        await page.goto(viewer.at(f"/session/{quote(long_id, safe='')}?turn={turn_id_of(turn)}"))
        await _keeps_the_link(page, turn, regions)
    await screenshot(page, "linked-turn-long-call")


async def test_a_live_call_s_waveform_grows_by_the_audio_heard_and_waits_while_played(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """Events come faster than the waveform's refresh period: it is drawn anew all the same
    while they come, each time from the audio of the chunks heard since (not the whole
    recording again); a waveform being played is left playing until it is paused, and
    playing fetches the whole window once."""
    session_id = "live/recorded 1"
    began, script, turns, recorded = live_call(session_id, 4, 16, tmp_path)

    def chunks(since_s: float, until_s: float) -> list[Event]:
        return chunks_in(recorded, began, since_s, until_s)

    starts = [turn.start_s for turn in script] + [float("inf")]
    await viewer.api.publish(turns[:8] + chunks(float("-inf"), starts[4]))
    await viewer.api.until_projected()
    drawn: list[int] = []  # the from_ms of each fetch of the recording
    page.on("request", lambda r: _from_ms(r.url, drawn))
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    regions = page.locator("[part='regions-container'] > div")
    await expect(regions).to_have_count(4, timeout=20_000)
    assert drawn == [0]

    for n in range(4, 14):  # a turn and its audio every 0.6 s for 6 s, twice the period
        await viewer.api.publish(turns[2 * n : 2 * n + 2] + chunks(starts[n], starts[n + 1]))
        await asyncio.sleep(0.6)
    assert len(drawn) > 1, "the waveform was not drawn anew while the events kept coming"
    await expect(regions).to_have_count(14, timeout=20_000)
    await asyncio.sleep(REFRESH_S)  # nothing left to draw
    assert all(from_ms > 0 for from_ms in drawn[1:]), f"fetched the whole call again: {drawn}"

    play = page.locator(".wave-controls .play")
    await play.click()
    await expect(play).to_have_text("Pause")
    await screenshot(page, "live-waveform-playing")
    assert drawn[-1] == 0, "playing did not fetch the window as drawn"
    heard = len(drawn)
    await viewer.api.publish(turns[28:32] + chunks(starts[14], starts[16]))
    await expect(page.locator(".timeline .turn")).to_have_count(16, timeout=20_000)
    await asyncio.sleep(REFRESH_S + 1)
    await expect(play).to_have_text("Pause")
    assert len(drawn) == heard, "the waveform was taken away while played"
    await expect(regions).to_have_count(14)
    await play.click()
    await expect(regions).to_have_count(16, timeout=20_000)
    assert len(drawn) == heard + 1, drawn
    assert drawn[-1] > 0, "the waveform was drawn from the whole call again once paused"
    await screenshot(page, "live-waveform")


async def test_a_live_call_without_audio_asks_for_it_again_once_a_chunk_comes(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """It has no chunk: the page asks for no recording (it asked, and logged the 404), and
    turns coming do not make it ask; a chunk does."""
    session_id = "live/unrecorded 1"
    script = script_call(random.Random(6), 6)
    store = open_chunk_store(tmp_path.as_uri())
    events = recorded_call(session_id, now() - timedelta(seconds=30), script, store)
    turns, chunks = events[: 2 * len(script)], events[2 * len(script) :]
    await viewer.api.publish(turns[:4])
    await viewer.api.until_projected()
    asked: list[int] = []
    page.on("request", lambda r: _from_ms(r.url, asked))
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    await expect(page.locator(".waveform .note")).to_contain_text(
        "No waveform: no audio of this call is stored (yet)."
    )
    assert asked == []
    await viewer.api.publish(turns[4:])
    await expect(page.locator(".timeline .turn")).to_have_count(len(script), timeout=20_000)
    await asyncio.sleep(REFRESH_S + 1)
    assert asked == [], "asked for the recording with no chunk heard"
    await viewer.api.publish(chunks)
    regions = page.locator("[part='regions-container'] > div")
    await expect(regions).to_have_count(len(script), timeout=20_000)
    assert asked == [0]


async def test_a_focused_region_keeps_the_focus_when_a_live_call_s_waveform_is_drawn_anew(
    viewer: Viewer, page: Page, tmp_path: Path
) -> None:
    """New audio redraws a live call's waveform, its regions made anew: the keyboard's focus
    goes back to the region of the turn that had it."""
    session_id = "live/focused 1"
    began, script, turns, chunks = live_call(session_id, 7, 8, tmp_path)
    starts = [turn.start_s for turn in script] + [float("inf")]
    await viewer.api.publish(turns[:8] + chunks_in(chunks, began, float("-inf"), starts[4]))
    await viewer.api.until_projected()
    drawn: list[int] = []
    page.on("request", lambda r: _from_ms(r.url, drawn))
    await page.goto(viewer.at(f"/session/{quote(session_id, safe='')}"))
    regions = page.locator("[part='regions-container'] > div")
    await expect(regions).to_have_count(4, timeout=20_000)
    focused = page.locator(f"[part~='{turn_id_of(script[1])}']")
    await focused.focus()
    await expect(focused).to_be_focused()
    for n in (4, 6):  # two redraws, each with new audio
        await viewer.api.publish(
            turns[2 * n : 2 * n + 4] + chunks_in(chunks, began, starts[n], starts[n + 2])
        )
        await expect(regions).to_have_count(n + 2, timeout=20_000)
        assert drawn[-1] > 0, drawn  # drawn anew from the audio heard, not mounted again
        await expect(focused).to_be_focused()
    await screenshot(page, "live-waveform-focus")
