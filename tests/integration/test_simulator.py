from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audio.stores import open_chunk_store
from producers import TranscriptProducer
from producers.simulator import simulate
from schemas import ChunkReady, SessionEnded, Topics, TurnStarted, TurnStopped
from tests.integration.reading import read_events

pytestmark = pytest.mark.integration


async def _simulated(
    bootstrap: str, topics: Topics, folder: Path, *, sessions: int, turns: int, seed: int
) -> tuple[list[str], int]:
    """Simulated calls with audio in ``folder``: their session ids and the events published."""
    async with TranscriptProducer(
        bootstrap, bot_id="sim", topics=topics, spool_dir=folder / "spool"
    ) as producer:
        store = open_chunk_store(str(folder / "c"))
        ids = await simulate(
            producer, sessions=sessions, rate=0, turns=turns, seed=seed, chunks=store
        )
    return ids, producer.stats.published


async def test_simulated_calls_publish_turns_and_contiguous_audio(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    sessions, published = await _simulated(
        kafka_bootstrap, topics, tmp_path, sessions=3, turns=6, seed=3
    )
    turns = await read_events(kafka_bootstrap, topics.turn_events, 3 * 12)
    assert sorted({e.session_id for e in turns}) == sessions
    assert sum(isinstance(e, TurnStopped) for e in turns) == 3 * 6
    expected_chunks = published - len(turns)
    chunks = [
        c
        for c in await read_events(kafka_bootstrap, topics.audio_chunks, expected_chunks)
        if isinstance(c, ChunkReady)
    ]
    assert len(chunks) == expected_chunks > 0
    for session in sessions:
        for track in ("user", "assistant"):
            mine = sorted(
                (c for c in chunks if c.session_id == session and c.track == track),
                key=lambda c: c.chunk_seq,
            )
            assert [c.chunk_seq for c in mine] == list(range(len(mine)))
            positions = [c.start_sample for c in mine]
            ends = [c.start_sample + c.num_samples for c in mine]
            assert positions == [0, *ends[:-1]], "chunks tile the recording without gaps"
        seqs = sorted(e.seq for e in turns + chunks if e.session_id == session)
        assert seqs == list(range(len(seqs)))


async def test_a_simulated_call_ends_after_its_last_turn_and_nothing_is_stamped_ahead(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    sessions, published = await _simulated(
        kafka_bootstrap, topics, tmp_path, sessions=4, turns=8, seed=11
    )
    done = datetime.now(UTC)
    events = await read_events(kafka_bootstrap, topics.turn_events, 4 * (2 * 8 + 1))
    expected_chunks = published - len(events)
    chunks = await read_events(kafka_bootstrap, topics.audio_chunks, expected_chunks)
    assert len(chunks) == expected_chunks > 0
    for session in sessions:
        ends = [e for e in events if e.session_id == session and isinstance(e, SessionEnded)]
        assert len(ends) == 1, session
        ended = ends[0].occurred_at
        stops = [
            e.stopped_at for e in events if e.session_id == session and isinstance(e, TurnStopped)
        ]
        starts = [
            e.started_at for e in events if e.session_id == session and isinstance(e, TurnStarted)
        ]
        assert min(starts) < max(stops) < ended <= done, session
        for c in chunks:
            if isinstance(c, ChunkReady) and c.session_id == session:
                end = c.recording_started_at + timedelta(
                    seconds=(c.start_sample + c.num_samples) / c.sample_rate
                )
                assert end <= ended, f"{session}: audio recorded after the call ended"


async def test_the_same_seed_gives_the_same_calls_under_new_session_ids(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """Published again under the same ids, a call would give its session two histories."""
    runs = [
        await _simulated(kafka_bootstrap, topics, tmp_path / n, sessions=1, turns=2, seed=7)
        for n in "ab"
    ]
    (first,), (second,) = (ids for ids, _ in runs)
    assert first != second
    stopped = await read_events(kafka_bootstrap, topics.turn_events, 8)
    texts = {
        s: [e.text for e in stopped if isinstance(e, TurnStopped) and e.session_id == s]
        for s in (first, second)
    }
    assert texts[first] == texts[second] != []
