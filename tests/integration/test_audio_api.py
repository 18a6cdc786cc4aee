"""The audio routes through the real broker and engine: holes, missing audio, a moment of the
call, word timings in samples, ranged reads, compressed recordings and bad parameters."""

from __future__ import annotations

import io
import json
import random
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import soundfile

from audio.stores import ChunkReader, open_chunk_store
from producers.simulator import SAMPLE_RATE, script_call, tone_hz, track_audio
from queries.clips import ClipCutter
from queries.recording import turn_clip
from schemas import ChunkReady, Role, Topics, TurnStarted, TurnStopped, WordTiming
from schemas.models import Event
from tests.events import envelope
from tests.integration.api_support import PROBLEM_JSON, Api, live_api
from tests.integration.audio_support import dominant_hz, recorded_call, samples_of, turn_id_of

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
SCRIPT = script_call(random.Random(1), 6)
"""Six turns, the second answer cut off by the user (a barge-in)."""


@pytest.fixture
async def api(
    kafka_bootstrap: str, topics: Topics, clickhouse_dsn: str, database: str, tmp_path: Path
) -> AsyncIterator[Api]:
    async with live_api(kafka_bootstrap, topics, clickhouse_dsn, database) as running:
        store = open_chunk_store(tmp_path.as_uri())
        await running.publish(
            recorded_call("whole", T0, SCRIPT, store)
            + recorded_call("holed", T0, SCRIPT, store, skip=_SKIPPED)
            + _overstated(recorded_call("short", T0, SCRIPT, store))
            + _silent_call("mute")
        )
        await running.until_projected()
        yield running


_SKIPPED: frozenset[tuple[Role, int]] = frozenset({("user", 6)})
"""The user's chunk of 6-7 s, inside the user's first turn, never arrives."""


def _overstated(events: list[Event]) -> list[Event]:
    """The call with its last user chunk claiming a whole second, more than its object holds."""
    last = max(
        (e for e in events if isinstance(e, ChunkReady) and e.track == "user"),
        key=lambda e: e.chunk_seq,
    )
    return [e.model_copy(update={"num_samples": SAMPLE_RATE}) if e is last else e for e in events]


def _silent_call(session_id: str) -> list[Event]:
    stop = T0 + timedelta(seconds=2)
    return [
        TurnStopped(
            **envelope(0, session_id),
            turn_id="t",
            role="user",
            started_at=T0,
            stopped_at=stop,
            text="no recording of this",
            words=(WordTiming(text="no", start=0.1, end=0.3),),
        )
    ]


async def test_a_missing_chunk_is_silence_and_listed_as_a_hole(api: Api) -> None:
    window: dict[str, str | int] = {"from_ms": 5000, "to_ms": 8000, "track": "user"}
    response = await api.http.get("/v1/sessions/holed/audio", params=window)
    assert response.status_code == 200, response.text
    assert json.loads(response.headers["x-audio-holes"]) == {"user": [[SAMPLE_RATE, SAMPLE_RATE]]}
    rate, samples = samples_of(response.content)
    _, expected = samples_of(
        (await api.http.get("/v1/sessions/whole/audio", params=window)).content
    )
    assert expected[rate : 2 * rate].any()
    assert not samples[rate : 2 * rate].any()
    assert np.array_equal(samples[:rate], expected[:rate])
    assert np.array_equal(samples[2 * rate :], expected[2 * rate :])


async def test_a_chunk_shorter_than_its_row_says_leaves_a_hole_where_it_ends(api: Api) -> None:
    end_s = SCRIPT[-1].end_s + 0.5  # where the recording ends
    second = int(end_s) * 1000
    window: dict[str, str | int] = {"from_ms": second, "to_ms": second + 1000, "track": "user"}
    response = await api.http.get("/v1/sessions/short/audio", params=window)
    assert response.status_code == 200, response.text
    held = round((end_s - int(end_s)) * SAMPLE_RATE)
    assert json.loads(response.headers["x-audio-holes"]) == {"user": [[held, SAMPLE_RATE - held]]}


async def test_a_turn_no_audio_covers_is_not_found_with_a_reason(api: Api) -> None:
    response = await api.http.get("/v1/sessions/mute/turns/t/audio")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "no audio" in response.json()["detail"]
    missing = await api.http.get("/v1/sessions/whole/turns/nope/audio")
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]


async def test_a_chunk_object_gone_from_its_store_is_a_502_naming_it(
    api: Api, tmp_path: Path
) -> None:
    store = open_chunk_store((tmp_path / "doomed").as_uri())
    await api.publish(recorded_call("lost", T0, SCRIPT, store))
    await api.until_projected()
    shutil.rmtree(tmp_path / "doomed")
    response = await api.http.get(f"/v1/sessions/lost/turns/{turn_id_of(SCRIPT[1])}/audio")
    assert response.status_code == 502
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "doomed/lost/user-0005.wav" in response.json()["detail"]


async def test_at_a_moment_names_the_turns_under_way_and_each_tracks_sample(api: Api) -> None:
    barge_in = next(t for t in SCRIPT if t.interrupted)
    answer = SCRIPT[barge_in.index + 1]
    t_ms = round((answer.start_s + barge_in.end_s) / 2 * 1000)  # both talk at once
    body = await api.ok("/v1/sessions/whole/at", t_ms=t_ms)
    assert {t["turn_id"] for t in body["turns"]} == {turn_id_of(barge_in), turn_id_of(answer)}
    user, assistant = body["tracks"]["user"], body["tracks"]["assistant"]
    at_sample = t_ms * SAMPLE_RATE // 1000
    assert user["segment_sample"] == assistant["segment_sample"] == at_sample
    assert user["sample"] == at_sample % SAMPLE_RATE  # 1 s chunks
    assert assistant["sample"] == at_sample  # one 30 s chunk


async def test_word_timings_come_back_as_times_and_samples(api: Api) -> None:
    body = await api.ok("/v1/sessions/mute/turns/t/alignment", pad_ms=100)
    (word,) = body["words"]
    assert word["started_at"] == (T0 + timedelta(seconds=0.1)).isoformat().replace("+00:00", "Z")
    assert (word["start_sample"], word["end_sample"]) == (None, None)  # no audio: no samples
    turn = SCRIPT[1]
    aligned = await api.ok(f"/v1/sessions/whole/turns/{turn_id_of(turn)}/alignment", pad_ms=100)
    pieces = {t["track"]: t["pieces"] for t in aligned["tracks"]}
    assert pieces["user"][0]["offset"] == 0
    assert pieces["user"][0]["segment_sample"] == round((turn.start_s - 0.1) * SAMPLE_RATE)
    (word,) = aligned["words"]  # 0.1 to 0.3 s into the turn, after 0.1 s of padding
    assert (word["start_sample"], word["end_sample"]) == (3_200, 6_400)


async def test_ids_holding_slashes_address_their_session_and_turn_on_every_route(
    api: Api, tmp_path: Path
) -> None:
    """A room name may hold ``/``: sent as ``%2F``, an id is one path segment, even one that
    ends like a route (``/audio``) or holds a whole route's path."""
    session = "rooms/7/audio"
    events = recorded_call(session, T0, SCRIPT, open_chunk_store(tmp_path.as_uri()))
    await api.publish(
        [
            e.model_copy(update={"turn_id": f"call/{e.turn_id}/audio"})
            if isinstance(e, TurnStarted | TurnStopped)
            else e
            for e in events
        ]
    )
    await api.until_projected()
    sid = quote(session, safe="")
    turn = SCRIPT[1]
    turn_id = f"call/{turn_id_of(turn)}/audio"
    tid = quote(turn_id, safe="")
    assert (await api.ok(f"/v1/sessions/{sid}"))["summary"]["session_id"] == session
    turns = (await api.ok(f"/v1/sessions/{sid}/turns"))["turns"]
    assert [t["turn_id"] for t in turns] == [f"call/{turn_id_of(t)}/audio" for t in SCRIPT]
    clip = await api.http.get(f"/v1/sessions/{sid}/turns/{tid}/audio")
    assert clip.status_code == 200, clip.text
    rate, samples = samples_of(clip.content)
    assert abs(dominant_hz(samples[:, 0], rate) - tone_hz(turn.index)) < 10
    aligned = await api.ok(f"/v1/sessions/{sid}/turns/{tid}/alignment")
    assert aligned["turn"]["turn_id"] == turn_id
    t_ms = round((turn.start_s + turn.end_s) / 2 * 1000)
    moment = await api.ok(f"/v1/sessions/{sid}/at", t_ms=t_ms)
    assert [t["turn_id"] for t in moment["turns"]] == [turn_id]
    window = await api.http.get(f"/v1/sessions/{sid}/audio", params={"from_ms": 0, "to_ms": 500})
    assert window.status_code == 200, window.text
    unencoded = await api.http.get(f"/v1/sessions/{session}")
    assert unencoded.status_code == 404


async def test_a_short_clip_reads_little_more_than_its_own_samples(api: Api) -> None:
    turn = next(t for t in SCRIPT if t.role == "assistant")
    chunks = ChunkReader()
    clip = turn_clip(api.reader, ClipCutter(chunks), "whole", turn_id_of(turn))
    samples = (turn.end_s - turn.start_s) * SAMPLE_RATE
    assert chunks.bytes_read <= 1.2 * 2 * samples + 512  # one header, once
    assert len(clip.wav) < 1.1 * 2 * samples + 44


async def test_a_stereo_ogg_opus_recording_is_cut_per_channel(api: Api, tmp_path: Path) -> None:
    rate = 48_000
    end_s = SCRIPT[-1].end_s + 0.5
    channels = [
        np.frombuffer(_at_rate(track_audio(SCRIPT, role, 0, end_s), rate), dtype="<i2")
        for role in ("user", "assistant")
    ]
    encoded = io.BytesIO()
    soundfile.write(encoded, np.stack(channels, axis=1), rate, format="OGG", subtype="OPUS")
    stored = open_chunk_store(tmp_path.as_uri()).put("egress/room.ogg", encoded.getvalue())
    await api.publish(
        [
            ChunkReady(
                **envelope(0, "egress"),
                chunk_id="egress/mixed/recording",
                track="mixed",
                chunk_seq=0,
                uri=stored.uri,
                format="ogg",
                sample_rate=rate,
                channels=2,
                start_sample=0,
                num_samples=len(channels[0]),
                recording_started_at=T0,
                byte_size=stored.byte_size,
                sha256=stored.sha256,
            )
        ]
    )
    await api.until_projected()
    for turn in SCRIPT:
        response = await api.http.get(
            "/v1/sessions/egress/audio",
            params={
                "from_ms": round(turn.start_s * 1000) + 100,
                "to_ms": round(turn.end_s * 1000) - 100,
                "track": turn.role,
            },
        )
        assert response.status_code == 200, response.text
        got_rate, samples = samples_of(response.content)
        assert got_rate == rate
        assert abs(dominant_hz(samples[:, 0], rate) - tone_hz(turn.index)) < 10, turn


def _at_rate(pcm: bytes, rate: int) -> bytes:
    """The simulator's 16 kHz PCM repeated up to ``rate`` (a multiple of it)."""
    samples = np.frombuffer(pcm, dtype="<i2")
    return np.repeat(samples, rate // SAMPLE_RATE).astype("<i2").tobytes()


BAD: list[tuple[str, dict[str, str | int], int, str | None]] = [
    ("/v1/sessions/whole/audio", {"from_ms": 0, "to_ms": 1000, "track": "left"}, 422, "track"),
    ("/v1/sessions/whole/audio", {"from_ms": 2000, "to_ms": 1000}, 400, "to_ms"),
    ("/v1/sessions/whole/audio", {"from_ms": 1000, "to_ms": 0}, 400, "to_ms"),
    ("/v1/sessions/whole/audio", {"from_ms": 0, "to_ms": 11 * 60_000}, 400, "to_ms"),
    ("/v1/sessions/whole/audio", {"from_ms": 10**15, "to_ms": 1000}, 422, "from_ms"),
    ("/v1/sessions/whole/at", {"t_ms": 3 * 10**14}, 422, "t_ms"),
    ("/v1/sessions/whole/turns/user-1/audio", {"pad_ms": -1}, 422, "pad_ms"),
    ("/v1/sessions/whole/at", {"t_ms": "soon"}, 422, "t_ms"),
    ("/v1/sessions/nobody/at", {"t_ms": 0}, 404, None),
]


async def test_bad_parameters_are_named(api: Api) -> None:
    for path, params, status, named in BAD:
        response = await api.http.get(path, params=params)
        assert response.status_code == status, (path, params, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        names = [p["name"] for p in response.json()["invalid_params"]]
        assert names == ([named] if named else []), (path, params)
