"""A producer shared by jobs: its life follows theirs, and a closed one never raises into one."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from producers import TranscriptProducer
from tstore.devkafka.broker import free_port


async def test_the_last_job_to_let_go_closes_what_the_first_started(tmp_path: Path) -> None:
    producer = TranscriptProducer(
        f"127.0.0.1:{free_port()}", bot_id="b", spool_dir=tmp_path, close_timeout_s=0.1
    )
    producer.hold()
    producer.hold()
    await producer.release()
    assert producer.running, "the second job still publishes"
    await producer.release()
    assert not producer.running


async def test_a_producer_its_owner_started_stays_open_after_the_jobs(tmp_path: Path) -> None:
    async with TranscriptProducer(
        f"127.0.0.1:{free_port()}", bot_id="b", spool_dir=tmp_path, close_timeout_s=0.1
    ) as producer:
        producer.hold()
        await producer.release()
        assert producer.running


async def test_holding_a_closed_producer_says_so_and_raises_nothing(tmp_path: Path) -> None:
    producer = TranscriptProducer(
        f"127.0.0.1:{free_port()}", bot_id="b", spool_dir=tmp_path, close_timeout_s=0.1
    )
    producer.start()
    await producer.close()
    with capture_logs() as logged:
        producer.hold()
        producer.turn_started("s-1", "t-1", "user")
        await producer.release()
    assert [e["event"] for e in logged] == ["producer_closed", "event_dropped"]
