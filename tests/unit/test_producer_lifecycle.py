"""What a bot developer gets wrong setting a producer up, told at the call that did it; and a
producer left running at exit, closed by the interpreter's exit rather than lost with it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from producers import TranscriptProducer
from producers.kafka import MAX_EVENT_BYTES
from producers.spool import Spool
from schemas import WordTiming
from tstore.devkafka.broker import free_port


def _producer(spool: Path) -> TranscriptProducer:
    """A producer of a broker that is not there: nothing here needs one to answer."""
    return TranscriptProducer(
        f"127.0.0.1:{free_port()}", bot_id="b", spool_dir=spool, close_timeout_s=10
    )


@pytest.mark.parametrize(
    "bootstrap", ["kafka:notaport", "127.0.0.1:99999", "", "http://127.0.0.1:9092", "k1:1;k2:2"]
)
def test_a_bootstrap_clients_cannot_take_is_refused_at_construction(
    bootstrap: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        TranscriptProducer(bootstrap, bot_id="b", spool_dir=tmp_path)
    assert not any(tmp_path.iterdir()), "no spool slot claimed"


@pytest.mark.parametrize("bootstrap", ["kafka", "k1:9092,k2:9093,", "[::1]:9092", "::1"])
def test_the_bootstraps_kafka_clients_take_are_taken(bootstrap: str, tmp_path: Path) -> None:
    TranscriptProducer(bootstrap, bot_id="b", spool_dir=tmp_path)._spool.release()


async def test_a_producer_starts_once_and_never_after_close(tmp_path: Path) -> None:
    started = _producer(tmp_path / "started")
    started.start()
    with pytest.raises(RuntimeError, match="already started"):
        started.start()
    await started.close()
    with pytest.raises(RuntimeError, match="was closed"):
        started.start()
    never = _producer(tmp_path / "never")
    await never.close()
    with pytest.raises(RuntimeError, match="was closed"):
        async with never:
            pass


async def test_close_of_zero_seconds_spools_at_once(tmp_path: Path) -> None:
    """0 meant the default (10 s here) before. Here the client is still connecting, to a
    broker that takes the connection and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        producer = TranscriptProducer(
            f"127.0.0.1:{silent.getsockname()[1]}", bot_id="b", spool_dir=tmp_path
        )
        producer.start()
        producer.turn_started("s-1", "t-1", "user")
        await asyncio.sleep(0.5)  # connecting, for good
        began = time.monotonic()
        await producer.close(0)
        assert time.monotonic() - began < 4
    assert producer.stats.spooled == 1


def _words(count: int, text: str = "w" * 40) -> tuple[WordTiming, ...]:
    return tuple(WordTiming(text=text, start=n, end=n + 0.5) for n in range(count))


async def test_a_turn_kafka_could_never_take_is_refused_at_the_call(tmp_path: Path) -> None:
    producer = _producer(tmp_path)
    producer.start()
    at = datetime.now(UTC)
    with capture_logs():
        with pytest.raises(ValueError, match=f"over the {MAX_EVENT_BYTES}") as refused:
            producer.turn_stopped(
                "s-1", "t-1", "user", text="😀" * 200_000, started_at=at, words=_words(20_000)
            )
        assert "'t-1'" in str(refused.value)
        assert "'s-1'" in str(refused.value)
        with pytest.raises(ValueError, match=f"over the {MAX_EVENT_BYTES}"):
            producer.turn_stopped(  # 17 bytes a word encoded: the bound counted 16
                "s-1", "t-1", "user", text="", started_at=at, words=_words(62_000, text="")
            )
        large = producer.turn_stopped(
            "s-1", "t-2", "user", text="😀" * 200_000, started_at=at, words=_words(100)
        )
        await producer.close(0)
    assert large.seq == 0, "the refused turn used no seq"


def _run(script: str, bootstrap: str, spool: Path) -> str:
    """What ``script``, run in a Python of its own with the bootstrap and the spool's folder
    as its arguments, printed and logged; it must end well."""
    ended = subprocess.run(
        [sys.executable, "-c", script, bootstrap, str(spool)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ended.returncode == 0, ended.stderr
    return ended.stdout + ended.stderr


_LEFT_RUNNING = """
import asyncio, sys
from producers import TranscriptProducer

async def main() -> None:
    producer = TranscriptProducer(sys.argv[1], bot_id="b", spool_dir=sys.argv[2])
    producer.start()
    for n in range(10):
        producer.turn_started("s-1", f"t-{n}", "user")

asyncio.run(main())
"""


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_producer_left_running_at_exit_spools_what_it_holds(tmp_path: Path, host: str) -> None:
    """With a host name, its connect at exit failed (no new thread may resolve it then) with
    an error the sender did not expect, and the events were lost with it."""
    said = _run(_LEFT_RUNNING, f"{host}:{free_port()}", tmp_path)
    assert "producer_closed_at_exit" in said
    spool = Spool.claim(tmp_path, max_bytes=1 << 20)
    assert len(spool.read(100)) == 10


_FORKED = """
import asyncio, multiprocessing, sys, time
from producers import TranscriptProducer

producer = TranscriptProducer(sys.argv[1], bot_id="b", spool_dir=sys.argv[2])

def child() -> None:
    producer.hold()  # as a job's adapter does: it must not raise into the job
    print("held, running:", producer.running, flush=True)
    try:
        producer.start()
    except RuntimeError as exc:
        print("refused:", exc, flush=True)
    ready.set()
    time.sleep(30)

ready = multiprocessing.get_context("fork").Event()
process = multiprocessing.get_context("fork").Process(target=child, daemon=True)
process.start()
ready.wait(30)
asyncio.run(producer.close(0))
again = TranscriptProducer(sys.argv[1], bot_id="b", spool_dir=sys.argv[2])
print("slot after close:", again._spool.directory.name, flush=True)
process.kill()
"""


def test_a_producer_made_before_a_fork_is_refused_in_the_child(tmp_path: Path) -> None:
    """Started there, it did not run (its events were all dropped) and shared the parent's
    spool slot."""
    said = _run(_FORKED, f"127.0.0.1:{free_port()}", tmp_path)
    assert "refused: this producer was made in another process, before os.fork()" in said
    assert "held, running: False" in said
    assert "producer_made_in_another_process" in said
    assert "slot after close: slot-0" in said, "the child let the parent's slot go"
