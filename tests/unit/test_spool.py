from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from producers import frames
from producers import spool as spool_module
from producers.frames import SpoolRecord
from producers.spool import UNREADABLE_AFTER, Spool, SpoolPosition


def _records(n: int, start: int = 0) -> list[SpoolRecord]:
    return [
        SpoolRecord("turn-events", f"s{i % 3}".encode(), f"event-{i}".encode())
        for i in range(start, start + n)
    ]


def _values(read: Sequence[tuple[SpoolPosition, SpoolRecord]]) -> list[bytes]:
    return [record.value for _, record in read]


def test_records_come_back_in_order_and_survive_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    assert spool.append(_records(5)) == 5
    first = spool.read(2)
    spool.commit(first[-1][0])
    assert _values(spool.read(1)) == [b"event-2"]  # read, never committed

    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert _values(reopened.read(10)) == [b"event-2", b"event-3", b"event-4"]
    assert not reopened.is_empty()


def test_commit_empties_the_spool_and_deletes_finished_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=64)
    for start in range(0, 20, 2):
        spool.append(_records(2, start))
    assert len(list(tmp_path.glob("*.seg"))) > 3
    read = spool.read(100)
    assert _values(read) == [f"event-{i}".encode() for i in range(20)]
    spool.commit(read[-1][0])
    assert spool.is_empty()
    assert spool.pending_bytes == 0
    assert len(list(tmp_path.glob("*.seg"))) == 1


CRASH_TAILS = {
    "torn": b"\x40\x00\x00\x00\x01\x02",  # a header promising 64 bytes, then a crash
    "zeros": bytes(64),
}
"""What a crash leaves behind the last whole record. Eight zero bytes (blocks the file system
never wrote) read as a frame of no payload whose CRC matches: it was handed over, failed to
decode, and failed every attempt after, for good."""


def _crash_mid_append(folder: Path, tail: str) -> None:
    (segment,) = _segments(folder)
    with segment.open("ab") as handle:
        handle.write(CRASH_TAILS[tail])


@pytest.mark.parametrize("tail", CRASH_TAILS)
def test_a_torn_tail_is_cut_and_what_came_before_kept(tmp_path: Path, tail: str) -> None:
    Spool(tmp_path, max_bytes=1 << 20).append(_records(3))
    _crash_mid_append(tmp_path, tail)
    assert _values(Spool(tmp_path, max_bytes=1 << 20).read(10)) == [
        b"event-0",
        b"event-1",
        b"event-2",
    ]


def test_a_corrupted_record_ends_the_readable_part(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_records(3))
    (segment,) = tmp_path.glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert _values(Spool(tmp_path, max_bytes=1 << 20).read(10)) == [b"event-0", b"event-1"]


def _segments(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.seg"), key=lambda p: int(p.stem))


def _disk_error(monkeypatch: pytest.MonkeyPatch, fails: Callable[[Path], bool]) -> None:
    """Reading a file ``fails`` picks raises the disk's I/O error."""
    real_open, real_read_bytes = Path.open, Path.read_bytes

    def open_(path: Path, *args: Any, **kwargs: Any) -> Any:
        if fails(path):
            raise OSError(errno.EIO, "Input/output error")
        return real_open(path, *args, **kwargs)

    def read_bytes(path: Path) -> bytes:
        if fails(path):
            raise OSError(errno.EIO, "Input/output error")
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "open", open_)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)


def test_opening_reads_no_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bot opens its spool on its own thread: a full one (512 MiB) used to be read through
    there, every frame checked, before the bot went on."""
    Spool(tmp_path, max_bytes=1 << 20, segment_bytes=64).append(_records(6))
    _disk_error(monkeypatch, lambda path: path.suffix == ".seg")
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=64)
    monkeypatch.undo()
    assert _values(spool.read(10)) == [f"event-{i}".encode() for i in range(6)]


def test_a_corrupt_segment_ends_where_reading_meets_the_damage(tmp_path: Path) -> None:
    Spool(tmp_path, max_bytes=1 << 20, segment_bytes=40).append(_records(2))
    Spool(tmp_path, max_bytes=1 << 20, segment_bytes=40).append(_records(2, 2))
    first = _segments(tmp_path)[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF
    first.write_bytes(bytes(data))
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=40)
    assert first.stat().st_size == len(data)  # not cut at the open
    with capture_logs() as logs:
        assert _values(spool.read(10)) == [b"event-0", b"event-2", b"event-3"]
    assert [e["event"] for e in logs] == ["spool_tail_cut"]
    assert first.stat().st_size < len(data)
    assert spool.pending_bytes == sum(p.stat().st_size for p in _segments(tmp_path))


@pytest.mark.parametrize("tail", CRASH_TAILS)
def test_a_torn_tail_is_cut_before_an_append_goes_behind_it(tmp_path: Path, tail: str) -> None:
    Spool(tmp_path, max_bytes=1 << 20).append(_records(2))
    _crash_mid_append(tmp_path, tail)
    Spool(tmp_path, max_bytes=1 << 20).append(_records(1, 2))
    assert _values(Spool(tmp_path, max_bytes=1 << 20).read(10)) == [
        b"event-0",
        b"event-1",
        b"event-2",
    ]


def test_a_segment_that_will_not_read_is_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error on one segment used to fail every attempt for good, and everything
    spooled after it waited behind it until the spool was full."""
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=40)
    spool.append(_records(2))
    spool.append(_records(2, 2))
    bad = _segments(tmp_path)[0]
    _disk_error(monkeypatch, lambda path: path == bad)
    for _ in range(UNREADABLE_AFTER - 1):
        with pytest.raises(OSError, match="Input/output"):
            spool.read(10)
    with capture_logs() as logs:
        read = spool.read(10)
    assert _values(read) == [b"event-2", b"event-3"]
    assert logs[0]["event"] == "spool_segment_unreadable"
    assert logs[0]["file"] == bad.name
    assert logs[0]["bytes_lost"] == bad.stat().st_size
    spool.commit(read[-1][0])
    assert spool.is_empty()
    assert not bad.exists()


def test_a_segment_given_up_keeps_its_number_for_what_was_read_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records read from a segment before it failed are still to be acknowledged: with its
    number free, the next append took it, and their acknowledgement marked the new records
    delivered, lost at the next restart."""
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_records(4))
    in_hand = spool.read(2)
    (bad,) = _segments(tmp_path)
    with monkeypatch.context() as patched:
        _disk_error(patched, lambda path: path == bad)
        for _ in range(UNREADABLE_AFTER - 1):
            with pytest.raises(OSError, match="Input/output"):
                spool.read(10)
        assert spool.read(10) == []
    spool.append(_records(2, 4))
    spool.commit(in_hand[-1][0])
    assert _values(spool.read(10)) == [b"event-4", b"event-5"]
    assert _values(Spool(tmp_path, max_bytes=1 << 20).read(10))[-2:] == [b"event-4", b"event-5"]


def test_records_read_before_a_segment_fails_are_returned_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They were marked read and thrown away with the error; a later commit then marked
    their segment delivered and deleted it."""
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=40)
    spool.append(_records(2))
    spool.append(_records(2, 2))
    second = _segments(tmp_path)[1]
    with monkeypatch.context() as patched:
        _disk_error(patched, lambda path: path == second)
        assert _values(spool.read(10)) == [b"event-0", b"event-1"]
        with pytest.raises(OSError, match="Input/output"):
            spool.read(10)
    assert _values(spool.read(10)) == [b"event-2", b"event-3"]


def test_other_errors_than_the_disk_s_never_give_a_segment_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_records(2))
    real_open = Path.open

    def no_descriptors(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path.suffix == ".seg":
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(Path, "open", no_descriptors)
        for _ in range(3 * UNREADABLE_AFTER):
            with pytest.raises(OSError, match="Too many"):
                spool.read(10)
    assert _values(spool.read(10)) == [b"event-0", b"event-1"]


def test_a_read_that_succeeds_again_starts_the_count_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=40)
    spool.append(_records(2))
    failures = iter([True] * (UNREADABLE_AFTER - 1) + [False] + [True] * (UNREADABLE_AFTER - 1))
    _disk_error(monkeypatch, lambda path: path.suffix == ".seg" and next(failures, False))
    for _ in range(UNREADABLE_AFTER - 1):
        with pytest.raises(OSError, match="Input/output"):
            spool.read(1)
    assert _values(spool.read(1)) == [b"event-0"]
    for _ in range(UNREADABLE_AFTER - 1):
        with pytest.raises(OSError, match="Input/output"):
            spool.read(1)
    assert _values(spool.read(1)) == [b"event-1"]


def test_the_size_limit_refuses_what_does_not_fit(tmp_path: Path) -> None:
    one = len(_records(1)[0].encode()) + 8
    spool = Spool(tmp_path, max_bytes=3 * one)
    assert spool.append(_records(5)) == 3
    read = spool.read(10)
    spool.commit(read[-1][0])
    assert spool.append(_records(2, 5)) == 2


def test_prepend_puts_records_before_everything_spooled(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_records(2, 2))
    spool.read(1)
    spool.prepend(_records(2))
    assert _values(Spool(tmp_path, max_bytes=1 << 20).read(10)) == [
        b"event-0",
        b"event-1",
        b"event-2",
        b"event-3",
    ]


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 5)),
        st.tuples(st.just("read"), st.integers(1, 6)),
        st.tuples(st.just("commit"), st.integers(0, 0)),
        st.tuples(st.just("reopen"), st.integers(0, 0)),
        st.tuples(st.just("crash mid-append"), st.integers(1, 12)),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(_ops)
def test_any_mix_of_operations_delivers_every_record_once_in_order(
    ops: list[tuple[str, int]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        spool = Spool(Path(folder), max_bytes=1 << 20, segment_bytes=100)
        written = delivered = 0
        in_hand: list[tuple[SpoolPosition, SpoolRecord]] = []
        for op, n in ops:
            if op == "append":
                written += spool.append(_records(n, written))
            elif op == "read":
                in_hand += spool.read(n)
            elif op == "commit" and in_hand:
                assert _values(in_hand) == [
                    f"event-{i}".encode() for i in range(delivered, delivered + len(in_hand))
                ]
                spool.commit(in_hand[-1][0])
                delivered += len(in_hand)
                in_hand = []
            elif op == "reopen":
                spool = Spool(Path(folder), max_bytes=1 << 20, segment_bytes=100)
                in_hand = []
            elif op == "crash mid-append" and (segments := _segments(Path(folder))):
                with segments[-1].open("ab") as tail:
                    tail.write(b"\x40\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08"[:n])
                spool = Spool(Path(folder), max_bytes=1 << 20, segment_bytes=100)
                in_hand = []
        everything = [r.value for _, r in Spool(Path(folder), max_bytes=1 << 20).read(1000)]
        assert everything == [f"event-{i}".encode() for i in range(delivered, written)]


def test_processes_on_one_folder_each_claim_a_slot_freed_when_they_go(tmp_path: Path) -> None:
    first = Spool.claim(tmp_path, max_bytes=1 << 20)
    second = Spool.claim(tmp_path, max_bytes=1 << 20)
    assert first.directory != second.directory
    first.append([SpoolRecord("t", b"k", b"left by the first")])
    first.release()
    taken_over = Spool.claim(tmp_path, max_bytes=1 << 20)
    assert taken_over.directory == first.directory
    assert [r.value for _, r in taken_over.read(10)] == [b"left by the first"]


def test_a_slot_held_by_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from producers.spool import Spool; "
            "Spool.claim(Path(sys.argv[1]), max_bytes=1 << 20); print('held', flush=True); "
            "time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    assert Spool.claim(tmp_path, max_bytes=1 << 20).directory.name == "slot-1"
    holder.kill()
    holder.wait()
    assert Spool.claim(tmp_path, max_bytes=1 << 20).directory.name == "slot-0"


def test_a_failed_write_leaves_nothing_for_the_next_to_follow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that reached the file but failed its fsync (a full disk) stayed there, past the
    spool's idea of the segment's end: the next append went behind it, and reads took the
    failed record for delivered data and cut the last one short."""
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_records(2))
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        spool.append(_records(1, 2))
    monkeypatch.setattr(os, "fsync", real_fsync)
    spool.append(_records(1, 3))
    expected = [b"event-0", b"event-1", b"event-3"]
    assert _values(spool.read(10)) == expected
    assert _values(Spool(tmp_path, max_bytes=1 << 20).read(10)) == expected


def test_a_new_segment_that_a_failed_write_cannot_remove_keeps_its_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next append took the same number and wrote behind what the failed write left;
    reading from the segment's start then handed over the failed write's records."""
    spool = Spool(tmp_path, max_bytes=1 << 20)

    def refused(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", refused)
        patched.setattr(Path, "unlink", refused)
        with pytest.raises(OSError, match="No space"):
            spool.append(_records(2))
    spool.append(_records(1, 2))
    assert _values(spool.read(10)) == [b"event-2"]


def test_a_spool_folder_that_cannot_be_used_holds_nothing_and_refuses_writes(
    tmp_path: Path,
) -> None:
    """A read-only file system (a container's root, the default ``tstore-spool`` relative
    to it) raised out of the producer's constructor: the bot could not start."""
    (tmp_path / "a-file").write_text("")
    with capture_logs() as logs:
        spool = Spool.claim(tmp_path / "a-file" / "spool", max_bytes=1 << 20)
    assert [e["event"] for e in logs] == ["spool_unavailable"]
    assert (spool.is_empty(), spool.has_unread(), spool.pending_bytes) == (True, False, 0)
    with pytest.raises(OSError, match="could not be used"):
        spool.append(_records(1))
    with pytest.raises(OSError, match="could not be used"):
        spool.prepend(_records(1))
    assert spool.read(10) == []


def test_an_unusable_spool_is_claimed_when_it_is_tried_again_after_the_cause_passed(
    tmp_path: Path,
) -> None:
    """It stayed unusable for the life of the process, even when what failed at the start (a
    volume mounted late, no file descriptors left) had passed."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    base = blocker / "spool"
    with capture_logs() as logs:
        spool = Spool.claim(base, max_bytes=1 << 20)
        assert not spool.reopen()
    assert [e["event"] for e in logs] == ["spool_unavailable"], "tried again quietly"
    blocker.unlink()
    Spool(base / "slot-0", max_bytes=1 << 20).append(_records(2))  # a killed process's
    assert spool.reopen()
    assert spool.usable
    assert spool.directory == base / "slot-0"
    assert _values(spool.read(10)) == [b"event-0", b"event-1"]
    assert spool.append(_records(1, start=2)) == 1
    assert Spool.claim(base, max_bytes=1 << 20).directory.name == "slot-1", "slot-0 is held"


@pytest.mark.parametrize(
    "cursor", ['{"0": ', '{"0": null}', '{"0": -5}', '{"0": 1e400}', "[1]", '{"x": 1}', "[" * 5000]
)
def test_a_cursor_that_cannot_be_made_out_sends_everything_again(
    tmp_path: Path, cursor: str
) -> None:
    """Some of these raised out of the producer's constructor, holding the slot's lock."""
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_records(2))
    spool.commit(spool.read(1)[-1][0])
    (tmp_path / "cursor.json").write_text(cursor)
    with capture_logs() as logs:
        assert _values(Spool(tmp_path, max_bytes=1 << 20).read(10)) == [b"event-0", b"event-1"]
    assert [e["event"] for e in logs] == ["spool_cursor_unreadable"]


@given(inside=st.floats(0.01, 0.99))
@settings(max_examples=40, deadline=None)
def test_a_cursor_inside_a_record_sends_that_record_again_and_loses_none_after(
    inside: float,
) -> None:
    """A cursor damaged into a well-formed offset inside a record: reading there met no
    frame, and the cut made where it began lost every record after it."""
    with tempfile.TemporaryDirectory() as folder:
        spool = Spool(Path(folder), max_bytes=1 << 20)
        spool.append(_records(6))
        read = spool.read(6)
        spool.commit(read[1][0])
        record_end = read[2][0].offset
        offset = int(read[1][0].offset + inside * (record_end - read[1][0].offset))
        offset = min(max(offset, read[1][0].offset + 1), record_end - 1)
        (Path(folder) / "cursor.json").write_text(f'{{"0": {offset}}}')
        with capture_logs() as logs:
            reopened = Spool(Path(folder), max_bytes=1 << 20)
            assert _values(reopened.read(10)) == [f"event-{n}".encode() for n in range(2, 6)]
        assert [e["event"] for e in logs] == ["spool_cursor_inside_a_record"]
        assert not any(e["event"] == "spool_tail_cut" for e in logs)


def test_a_disk_error_while_looking_for_the_record_a_cursor_points_inside_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed walk left the segment as if walked, and the next attempt cut it at the
    cursor, inside a record: every record after it lost."""
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_records(4))
    read = spool.read(4)
    (tmp_path / "cursor.json").write_text(f'{{"0": {read[0][0].offset + 3}}}')
    real_read_frame, failing = frames.read_frame, [True]

    def read_frame(handle: BinaryIO, end: int) -> bytes | None:
        if handle.tell() == 0 and failing:
            failing.clear()
            raise OSError(errno.EIO, "Input/output error")
        return real_read_frame(handle, end)

    monkeypatch.setattr(spool_module, "read_frame", read_frame)
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    with pytest.raises(OSError, match="Input/output error"):
        reopened.read(10)
    assert _values(reopened.read(10)) == [f"event-{n}".encode() for n in range(1, 4)]


def test_a_bad_record_where_the_cursor_rightly_points_still_ends_the_segment(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_records(4))
    read = spool.read(4)
    spool.commit(read[1][0])
    segment = _segments(tmp_path)[0]
    damaged = bytearray(segment.read_bytes())
    damaged[read[1][0].offset + 9] ^= 0xFF  # in the third record's payload
    segment.write_bytes(bytes(damaged))
    with capture_logs() as logs:
        assert Spool(tmp_path, max_bytes=1 << 20).read(10) == []
    assert [e["event"] for e in logs] == ["spool_tail_cut"]
    assert segment.stat().st_size == read[1][0].offset
