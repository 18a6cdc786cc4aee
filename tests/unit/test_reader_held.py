"""What a reader holds (``queries.reader.Reader.held``): read once per ``pointer_ttl_s``, per
key, and read again after ``forget`` (a cut-over in this process)."""

from __future__ import annotations

import time
from typing import cast

import pytest
from clickhouse_connect.driver.client import Client

from queries.reader import Reader


def test_held_for_the_pointers_time_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    reader = Reader(cast(Client, object()), pointer_ttl_s=1.0)
    reads: list[str] = []

    def read(key: str) -> str:
        reads.append(key)
        return f"{key}{len(reads)}"

    assert reader.held("a", lambda: read("a")) == "a1"
    now[0] += 1.0
    assert reader.held("a", lambda: read("a")) == "a1"
    assert reader.held("b", lambda: read("b")) == "b2"
    now[0] += 0.1
    assert reader.held("a", lambda: read("a")) == "a3"
    reader.forget()
    assert reader.held("b", lambda: read("b")) == "b4"


def test_a_keeper_reads_every_time() -> None:
    reader = Reader(cast(Client, object()), pointer_ttl_s=0.0)
    reads = iter(range(3))
    assert [reader.held("mark", lambda: next(reads)) for _ in range(3)] == [0, 1, 2]
