"""The delivery thread against trouble that is not Kafka's: bad settings, a full disk, a
bootstrap its client cannot parse, a full spool, records Kafka will never take. No broker is
reached here (the disk is faked where it must be full); ``tests/integration/
test_producer_troubles.py`` has the cases that need one."""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from structlog.testing import capture_logs

from producers.delivery import Delivery, DeliveryConfig
from producers.frames import SpoolRecord
from producers.journal import Journal
from producers.refusals import Outcome, fitting, outcome
from producers.sparse_log import SparseLog
from producers.spool import Spool
from schemas.models import Event
from tests.events import chunk
from tstore.devkafka.broker import free_port


def _encode(event: Event) -> SpoolRecord:
    return SpoolRecord("audio-chunks", event.session_id.encode(), f"event-{event.seq}".encode())


def _wait(condition: Callable[[], bool], what: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _nowhere(spool: Spool) -> Delivery:
    """Delivery to a broker out of reach, with room for five events in memory."""
    config = DeliveryConfig(memory_events=5, retry_pause_s=5)
    return Delivery(f"127.0.0.1:{free_port()}", spool, _encode, config)


@contextlib.contextmanager
def _running(delivery: Delivery) -> Iterator[list[MutableMapping[str, Any]]]:
    """The delivery thread started, and closed after the block; what it logged meanwhile."""
    with capture_logs() as logs:
        delivery.start()
        try:
            yield logs
        finally:
            delivery.close(0.5)


def _lines(logs: Sequence[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == event]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_events", 0),
        ("memory_events", 0),
        ("retry_pause_s", 0),
        ("max_retry_pause_s", 0.1),
        ("request_timeout_ms", 0),
        ("linger_ms", -1),
        ("durability_window_ms", 0),
        ("batch_events", 1.5),
        ("compression", "brotli"),
    ],
)
def test_a_config_the_thread_cannot_work_with_is_refused_naming_the_field(
    field: str, value: object
) -> None:
    """batch_events=0 never delivered and burnt a core; retry_pause_s=0 flooded the log."""
    with pytest.raises(ValueError, match=f"DeliveryConfig.{field}: "):
        DeliveryConfig(**{field: value})  # type: ignore[arg-type]


def test_the_defaults_and_the_tests_configs_are_accepted() -> None:
    DeliveryConfig()
    DeliveryConfig(retry_pause_s=5)
    DeliveryConfig(memory_events=1, batch_events=1, retry_pause_s=0.01, compression=None)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_is_said_once_then_summed_up_sparsely() -> None:
    clock = _Clock()
    sparse = SparseLog("events_dropped", every_s=5, clock=clock, reason="spool full")
    with capture_logs() as logs:
        for _ in range(500):
            sparse.count(1)
            clock.now += 0.02  # ten seconds of drops
        sparse.flush()
        sparse.ended()
    counts = [e["count"] for e in logs]
    assert len(logs) <= 4
    assert sum(counts) == 500
    assert counts[0] == 1
    assert all(e["reason"] == "spool full" for e in logs)


def test_trouble_that_ends_says_so_once_with_its_total() -> None:
    """A nearly full disk takes small writes and refuses large ones: the trouble is said
    ended once writes have gone through for a while, not with every write that fits."""
    clock = _Clock()
    sparse = SparseLog("write_failed", ended_event="write_recovered", every_s=5, clock=clock)
    with capture_logs() as logs:
        sparse.ended()  # nothing to end
        sparse.count(3, error="No space left on device")
        for second in range(1, 4):
            clock.now = second
            sparse.ended()  # a small write went through
            sparse.count(2, error="No space left on device")  # and a large one did not
        sparse.ended()
        clock.now = 8
        sparse.tick()
        sparse.tick()
    assert [(e["event"], e.get("count"), e.get("total")) for e in logs] == [
        ("write_failed", 3, None),
        ("write_recovered", None, 9),
    ]


def _record(size: int, key: bytes = b"s") -> SpoolRecord:
    return SpoolRecord("turn-events", key, b"x" * size)


def test_a_batch_stops_before_the_first_record_over_the_limit() -> None:
    records = [_record(10), _record(10), _record(100), _record(10)]
    assert fitting(records, 11) == 2
    assert fitting(records[2:], 11) == 0
    assert fitting(records, 101) == 4


def test_a_refused_record_is_dropped_only_from_the_head_of_what_failed() -> None:
    refused = MessageSizeTooLargeError()
    down = KafkaConnectionError()
    assert outcome([None, None]) == Outcome(2)
    assert outcome([None, refused, None]) == Outcome(1, refused)
    assert outcome([None, refused, down]) == Outcome(1, refused, down)
    assert outcome([down, refused]) == Outcome(0, None, down)
    assert outcome([refused, None, refused]) == Outcome(0, refused)  # the second: another round


class _FullDisk(Spool):
    """A spool on a disk with no room left until ``full`` is cleared."""

    full = True

    def _write(self, seg: int, data: bytes) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        super()._write(seg, data)


class _FullDiskJournal(Journal):
    full = True
    tries = 0

    def write(self, records: Sequence[SpoolRecord], end: int) -> None:
        if self.full:
            self.tries += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write(records, end)


def test_a_full_disk_drops_what_it_cannot_spool_and_the_thread_goes_on(tmp_path: Path) -> None:
    """An OSError from the spool ended the delivery thread: what its memory queue held was
    lost uncounted, and every later event dropped with a line each. Now what could not be
    written is dropped, counted and said once; the memory queue keeps its events, and once
    there is room again spooling works again."""
    spool = _FullDisk(tmp_path, max_bytes=1 << 20)
    delivery = _nowhere(spool)
    with _running(delivery) as logs:
        for seq in range(50):
            delivery.submit(chunk(seq))
        _wait(lambda: delivery.stats.dropped == 45, "45 events dropped")
        assert delivery.alive
        assert delivery.backlog == 5  # the memory queue still holds its events
        spool.full = False
        for seq in range(50, 60):
            delivery.submit(chunk(seq))
        _wait(lambda: delivery.stats.spooled == 10, "spooled once there is room")
    assert not _lines(logs, "delivery_thread_failed")
    (failed,) = _lines(logs, "spool_write_failed")
    assert "No space left" in failed["error"]
    assert len(_lines(logs, "spool_write_recovered")) == 1
    assert not [e for e in logs if "exc_info" in e]
    assert delivery.stats.dropped == 45
    # closing spooled the memory queue's five in front of the ten
    assert [r.value for _, r in spool.read(100)] == [
        f"event-{i}".encode() for i in [*range(5), *range(50, 60)]
    ]


def test_a_journal_on_a_full_disk_is_said_once_not_every_retry(tmp_path: Path) -> None:
    """journal_write_failed logged a long traceback every 100 ms while the disk was full."""
    spool = Spool(tmp_path, max_bytes=1 << 20)
    delivery = Delivery(f"127.0.0.1:{free_port()}", spool, _encode, DeliveryConfig())
    journal = _FullDiskJournal(tmp_path / "journal")
    delivery._journal = journal
    with _running(delivery) as logs:
        for seq in range(3):
            delivery.submit(chunk(seq))
        _wait(lambda: journal.tries >= 5, "the journal tried again")
        journal.full = False
        _wait(lambda: bool(_lines(logs, "journal_write_recovered")), "journal recovered")
        assert [r.value for r in Journal(tmp_path / "journal").recover()] == [
            f"event-{i}".encode() for i in range(3)
        ]
    (failed,) = _lines(logs, "journal_write_failed")
    assert failed["events"] == 3
    assert not [e for e in logs if "exc_info" in e]
    assert delivery.stats.dropped == 0  # they wait in memory, for Kafka


def test_a_full_spool_is_said_sparsely(tmp_path: Path) -> None:
    """One events_dropped line per dropped event, 490 of them in five seconds."""
    spool = Spool(tmp_path, max_bytes=200)
    delivery = _nowhere(spool)
    with _running(delivery) as logs:
        for seq in range(300):
            delivery.submit(chunk(seq))
            if seq % 10 == 0:
                time.sleep(0.001)  # taken in over many rounds, as from a talking bot
        _wait(lambda: delivery.backlog == 5, "all taken in")
    dropped = _lines(logs, "events_dropped")
    assert sum(e["count"] for e in dropped) == delivery.stats.dropped > 250
    assert len(dropped) <= 3


@pytest.mark.parametrize("bootstrap", ["kafka:notaport", "127.0.0.1:99999"])
def test_a_bootstrap_the_client_cannot_parse_fails_attempts_not_the_thread(
    tmp_path: Path, bootstrap: str
) -> None:
    """A ValueError or OverflowError from the client ended the sender task without a word:
    stats said running, the backlog grew, and the SessionEnded given before close was lost.
    Now it is one line, attempts go on with back-off, and close spools everything."""
    spool = Spool(tmp_path, max_bytes=1 << 20)
    delivery = Delivery(bootstrap, spool, _encode, DeliveryConfig(retry_pause_s=0.05))
    with _running(delivery) as logs:
        for seq in range(20):
            delivery.submit(chunk(seq))
        _wait(lambda: delivery.stats.errors >= 3, "attempts going on")
        assert delivery.alive
    (failed,) = _lines(logs, "delivery_attempt_failed")
    assert failed["error"].split(":")[0] in {"ValueError", "OverflowError"}
    assert not [e for e in logs if "exc_info" in e]
    assert [r.value for _, r in spool.read(100)] == [f"event-{i}".encode() for i in range(20)]


def test_a_spool_that_could_not_be_used_is_tried_again_and_then_spools_and_journals(
    tmp_path: Path,
) -> None:
    """Once the cause passed, what the memory queue could not hold was still dropped, and
    nothing was safe from a kill, for the rest of the process's life."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    spool = Spool.claim(blocker / "spool", max_bytes=1 << 20)
    config = DeliveryConfig(memory_events=5, retry_pause_s=5, spool_retry_s=0.05)
    delivery = Delivery(f"127.0.0.1:{free_port()}", spool, _encode, config)
    with _running(delivery) as logs:
        for seq in range(8):
            delivery.submit(chunk(seq))
        _wait(lambda: delivery.stats.dropped == 3, "what memory could not hold dropped")
        blocker.unlink()
        _wait(lambda: bool(_lines(logs, "spool_available")), "the spool tried again")
        for seq in range(8, 12):
            delivery.submit(chunk(seq))
        _wait(lambda: delivery.stats.spooled == 4, "spooled behind the memory queue")
        journal = spool.directory / "journal"
        _wait(
            lambda: sum(p.stat().st_size for p in journal.glob("*.wal")) > 0,
            "the memory queue journaled",
        )
    assert delivery.stats.dropped == 3
    assert [r.value for _, r in spool.read(100)] == [
        f"event-{i}".encode() for i in [*range(5), *range(8, 12)]
    ]
