from __future__ import annotations

from pathlib import Path

import pytest

from audio.stores import open_chunk_store
from producers import TranscriptProducer
from producers.simulator import simulate
from schemas import ChunkReady, Topics, TurnStopped
from tests.integration.reading import read_events

pytestmark = pytest.mark.integration


async def test_simulated_calls_publish_turns_and_contiguous_audio(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    async with TranscriptProducer(
        kafka_bootstrap, bot_id="sim", topics=topics, spool_dir=tmp_path / "spool"
    ) as producer:
        store = open_chunk_store(str(tmp_path / "c"))
        sessions = await simulate(producer, sessions=3, rate=0, turns=6, seed=3, chunks=store)
    turns = await read_events(kafka_bootstrap, topics.turn_events, 3 * 12)
    assert sorted({e.session_id for e in turns}) == sessions
    assert sum(isinstance(e, TurnStopped) for e in turns) == 3 * 6
    expected_chunks = producer.stats.published - len(turns)
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
