"""The write-ahead journal alone, and the delivery thread's use of it with no broker to reach."""

from __future__ import annotations

import errno
import os
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from producers.delivery import Delivery, DeliveryConfig
from producers.frames import SpoolRecord
from producers.journal import Journal
from producers.spool import Spool
from schemas.models import Event
from tests.events import chunk
from tstore.devkafka.broker import free_port


def _records(n: int, start: int = 0) -> list[SpoolRecord]:
    return [
        SpoolRecord("audio-chunks", f"s{i % 3}".encode(), f"event-{i}".encode())
        for i in range(start, start + n)
    ]


def _values(records: list[SpoolRecord]) -> list[bytes]:
    return [r.value for r in records]


def _expected(start: int, stop: int) -> list[bytes]:
    return [f"event-{i}".encode() for i in range(start, stop)]


def test_what_a_killed_process_wrote_comes_back_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=64)
    journal.write(_records(3), end=3)
    journal.write(_records(4, 3), end=7)
    assert len(list(tmp_path.glob("*.wal"))) == 2  # the first write filled a segment
    assert _values(Journal(tmp_path).recover()) == _expected(0, 7)


def test_acknowledged_segments_are_deleted_and_the_rest_kept(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=64)
    journal.write(_records(3), end=3)
    journal.write(_records(3, 3), end=6)
    journal.trim(4)  # the second segment still holds two unacknowledged events
    assert _values(Journal(tmp_path).recover()) == _expected(3, 6)
    journal.trim(6)
    assert list(tmp_path.iterdir()) == []
    journal.write(_records(1, 6), end=7)  # a new segment after a full trim
    assert _values(Journal(tmp_path).recover()) == _expected(6, 7)


def test_a_torn_tail_is_cut_and_what_came_before_kept(tmp_path: Path) -> None:
    Journal(tmp_path).write(_records(3), end=3)
    (segment,) = tmp_path.iterdir()
    with segment.open("ab") as handle:
        handle.write(b"\x40\x00\x00\x00\x01\x02")  # a header promising 64 bytes, then the kill
    assert _values(Journal(tmp_path).recover()) == _expected(0, 3)


def test_a_new_process_writes_beside_what_it_recovers_until_it_forgets_it(
    tmp_path: Path,
) -> None:
    Journal(tmp_path).write(_records(2), end=2)
    restarted = Journal(tmp_path)
    restarted.write(_records(1, 2), end=1)  # must not overwrite the killed process's segment
    assert _values(restarted.recover()) == _expected(0, 2)
    restarted.forget_recovered()
    assert _values(Journal(tmp_path).recover()) == _expected(2, 3)
    restarted.close()
    assert list(tmp_path.iterdir()) == []


def _encode(event: Event) -> SpoolRecord:
    return SpoolRecord("audio-chunks", event.session_id.encode(), f"event-{event.seq}".encode())


def test_events_waiting_for_kafka_are_journaled_within_the_window(tmp_path: Path) -> None:
    """Kafka out of reach: the memory queue's events reach the journal within the window, and
    a process started after a kill puts them in front of what was spooled after them."""
    config = DeliveryConfig(memory_events=5, retry_pause_s=5)
    spool = Spool(tmp_path, max_bytes=1 << 20)
    delivery = Delivery(f"127.0.0.1:{free_port()}", spool, _encode, config)
    delivery.start()
    try:
        for seq in range(3):
            delivery.submit(chunk(seq))
        accepted = time.monotonic()
        journal = tmp_path / "journal"
        while not any(p.stat().st_size for p in journal.glob("*.wal")):
            waited = time.monotonic() - accepted
            assert waited < config.durability_window_ms / 1000, "not journaled within the window"
            time.sleep(0.005)
        assert _values(Journal(journal).recover()) == _expected(0, 3)
        for seq in range(3, 8):
            delivery.submit(chunk(seq))  # two fit in memory, three go to the spool
        while spool.is_empty():
            time.sleep(0.005)
        # killed here: the next process delivers everything in the order it was accepted
        restarted = Spool(tmp_path, max_bytes=1 << 20)
        Delivery(f"127.0.0.1:{free_port()}", restarted, _encode)._recover()
        assert [r.value for _, r in restarted.read(100)] == _expected(0, 8)
        assert Journal(journal).recover() == []
    finally:
        delivery.close(0.1)


def test_a_journal_goes_in_front_of_a_full_spool_past_its_limit(tmp_path: Path) -> None:
    """What a killed process held in memory, refused by a full spool, was deleted with the
    journal; kept there instead, it would reach Kafka after newer events of its sessions."""
    Journal(tmp_path / "journal").write(_records(3), end=3)
    full = Spool(tmp_path, max_bytes=1)
    full.append(_records(1, 3))  # nothing fits
    delivery = Delivery(f"127.0.0.1:{free_port()}", full, _encode)
    delivery._recover()
    assert [r.value for _, r in full.read(10)] == _expected(0, 3)
    assert (delivery.stats.spooled, delivery.stats.dropped) == (3, 0)
    assert Journal(tmp_path / "journal").recover() == []


def test_a_journal_the_disk_refuses_to_spool_is_kept_for_a_later_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Journal(tmp_path / "journal").write(_records(3), end=3)
    delivery = Delivery(f"127.0.0.1:{free_port()}", Spool(tmp_path, max_bytes=1 << 20), _encode)

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", full_disk)
        delivery._recover()
    assert _values(Journal(tmp_path / "journal").recover()) == _expected(0, 3)


def test_a_close_puts_what_memory_held_in_front_of_a_full_spool(tmp_path: Path) -> None:
    config = DeliveryConfig(retry_pause_s=5)
    spool = Spool(tmp_path, max_bytes=1)
    delivery = Delivery(f"127.0.0.1:{free_port()}", spool, _encode, config)
    delivery.start()
    try:
        for seq in range(3):
            delivery.submit(chunk(seq))
        deadline = time.monotonic() + 10
        while delivery.backlog < 3 or delivery._inbox:
            assert time.monotonic() < deadline, "never taken in"
            time.sleep(0.005)
    finally:
        delivery.close(0.1)
    assert (delivery.stats.spooled, delivery.stats.dropped) == (3, 0)
    assert [r.value for _, r in spool.read(10)] == _expected(0, 3)
    assert Journal(tmp_path / "journal").recover() == []


def test_a_failed_write_leaves_no_torn_frame_before_later_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path)
    journal.write(_records(2), end=2)
    real_write = os.write

    def half_then_full_disk(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full_disk)
    with pytest.raises(OSError, match="No space"):
        journal.write(_records(2, 2), end=4)
    monkeypatch.setattr(os, "write", real_write)
    journal.write(_records(2, 4), end=6)
    assert _values(Journal(tmp_path).recover()) == _expected(0, 2) + _expected(4, 6)


def test_files_that_are_not_segments_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.wal").write_text("not a segment")
    Journal(tmp_path).write(_records(1), end=1)
    assert _values(Journal(tmp_path).recover()) == _expected(0, 1)


def test_a_record_that_does_not_decode_costs_only_itself(tmp_path: Path) -> None:
    """A frame whose checksum holds but whose lengths overrun it stopped the whole recovery:
    the journal was then left for ever, its other events never recovered."""
    journal = Journal(tmp_path)
    journal.write(_records(1), end=1)
    bad = b"\xff\xff\x00\x00"
    with next(tmp_path.glob("*.wal")).open("ab") as segment:
        segment.write(struct.pack("<II", len(bad), zlib.crc32(bad)) + bad)
    journal.write(_records(1, 1), end=2)
    with capture_logs() as logs:
        assert _values(Journal(tmp_path).recover()) == _expected(0, 2)
    assert [(e["event"], e["count"]) for e in logs] == [("journal_records_undecodable", 1)]


def test_a_journal_folder_that_cannot_be_listed_is_no_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing it found nothing, so the first file was numbered 0 again and opened over the
    one there, with what a killed process had left in it."""
    Journal(tmp_path).write(_records(2), end=2)
    real_listdir = os.listdir

    def refused(path: Any) -> list[str]:
        if Path(path) == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_listdir(path)

    with monkeypatch.context() as patched, capture_logs() as logs:
        patched.setattr(os, "listdir", refused)
        journal = Journal(tmp_path)
        journal.write(_records(1, 2), end=1)
    assert [e["event"] for e in logs] == ["journal_unavailable"]
    assert _values(Journal(tmp_path).recover()) == _expected(0, 2)
