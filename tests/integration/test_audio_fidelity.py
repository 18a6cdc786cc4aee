"""Clips over HTTP hold the audio of their turn: checked by what they sound like.

Every simulated turn is a tone of its own (``tone_hz``) on its speaker's track. Calls are
recorded with the user's track cut in 1 s chunks and the assistant's in 30 s chunks, a reconnect
midway (a second segment with its own sample 0), and their events published shuffled, partly
twice, the chunks after the turns. Each turn's clip must then be that turn's tone, starting and
ending within one 20 ms frame of the turn, through a local folder and through object storage
API servers of S3 (s3proxy), GCS (fake-gcs-server, written to through its own API: it cannot
take obstore's writes) and Azure (Azurite).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from audio.stores import ChunkWriter
from producers.simulator import SAMPLE_RATE, SimulatedTurn, script_call, tone_hz
from schemas import Topics
from tests.conftest import chunk_writer
from tests.integration.api_support import Api, live_api
from tests.integration.audio_support import (
    FRAME_S,
    dominant_hz,
    recorded_call,
    samples_of,
    shuffled_twice,
    sounding,
    turn_id_of,
)

pytestmark = pytest.mark.integration

PAD_MS = 300


@pytest.fixture(params=["local", "s3proxy", "gcs", "azurite"])
def chunk_store(request: pytest.FixtureRequest) -> ChunkWriter:
    return chunk_writer(request, request.param)[1]


async def test_every_turns_clip_is_its_tone_from_its_start_to_its_stop(
    kafka_bootstrap: str,
    topics: Topics,
    clickhouse_dsn: str,
    database: str,
    clickhouse: Client,
    chunk_store: ChunkWriter,
) -> None:
    rng = random.Random(7)
    script = script_call(rng, 8)
    reconnect_s = round(script[3].start_s + 0.37, 3)  # inside a turn: it spans two segments
    started_at = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    events = recorded_call("call-1", started_at, script, chunk_store, reconnect_s=reconnect_s)
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as api:
        await api.publish(shuffled_twice(events, rng))
        await api.until_projected()
        for turn in script:
            await _check_turn_clip(api, turn)
        await _check_stereo_window(api, script)


async def _check_turn_clip(api: Api, turn: SimulatedTurn) -> None:
    path = f"/v1/sessions/call-1/turns/{turn_id_of(turn)}/audio"
    response = await api.http.get(path, params={"pad_ms": PAD_MS})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    holes: dict[str, Any] = json.loads(response.headers["x-audio-holes"])
    before_recording = max(0, round((PAD_MS / 1000 - turn.start_s) * SAMPLE_RATE))
    assert holes == {turn.role: [[0, before_recording]] if before_recording else []}
    rate, samples = samples_of(response.content)
    assert (rate, samples.shape[1]) == (SAMPLE_RATE, 1)
    begins, ends = sounding(samples[:, 0], rate)
    length = turn.end_s - turn.start_s
    assert abs(begins - PAD_MS / 1000) <= FRAME_S, (turn, begins)
    assert abs(ends - (PAD_MS / 1000 + length)) <= FRAME_S, (turn, ends)
    middle = samples[round(rate * (begins + 0.05)) : round(rate * (ends - 0.05)), 0]
    assert abs(dominant_hz(middle, rate) - tone_hz(turn.index)) < 10, turn


async def _check_stereo_window(api: Api, script: list[SimulatedTurn]) -> None:
    """Both tracks of the whole call: user left, assistant right, each turn in its channel."""
    response = await api.http.get(
        "/v1/sessions/call-1/audio", params={"from_ms": 0, "to_ms": round(script[-1].end_s * 1000)}
    )
    assert response.status_code == 200, response.text
    rate, samples = samples_of(response.content)
    assert samples.shape[1] == 2
    for turn in script:  # session time 0 is the recording's start, before the first turn
        channel = 0 if turn.role == "user" else 1
        lo, hi = round((turn.start_s + 0.1) * rate), round((turn.end_s - 0.1) * rate)
        assert abs(dominant_hz(samples[lo:hi, channel], rate) - tone_hz(turn.index)) < 10, turn
