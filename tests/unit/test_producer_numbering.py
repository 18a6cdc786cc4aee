"""Per-session numbering, which needs no broker: the producer numbers events as they are made."""

from __future__ import annotations

from pathlib import Path

from producers import TranscriptProducer


def test_each_session_counts_from_zero_and_a_resumed_one_continues(tmp_path: Path) -> None:
    producer = TranscriptProducer("127.0.0.1:1", bot_id="bot", spool_dir=tmp_path)
    assert [producer.turn_started("a", f"t{i}", "user").seq for i in range(3)] == [0, 1, 2]
    assert producer.turn_started("b", "t0", "user").seq == 0
    producer.resume_session("c", 41)
    assert producer.turn_started("c", "t9", "assistant").seq == 41
    producer.end_session("a")
    assert producer.turn_started("a", "t0", "user").seq == 0
