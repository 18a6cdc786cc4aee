"""A list bound through ``queries.reader.ArrayParameter`` reaches the engine as the very text
clickhouse-connect makes of the list itself, whatever its strings hold."""

from __future__ import annotations

from datetime import UTC, datetime

from clickhouse_connect.driver.binding import format_bind_value
from hypothesis import given
from hypothesis import strategies as st

from queries.reader import ArrayParameter, bindable


@given(st.lists(st.text()))
def test_strings_are_sent_as_clickhouse_connect_sends_them(items: list[str]) -> None:
    assert format_bind_value(ArrayParameter(items)) == format_bind_value(items)


@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1)))
def test_integers_are_sent_as_clickhouse_connect_sends_them(items: list[int]) -> None:
    assert format_bind_value(ArrayParameter(items)) == format_bind_value(items)


def test_escapes_what_the_engine_would_misread() -> None:
    hostile = ["it's", "back\\slash", "tab\tnew\nline", "`tick`", "", "é✓"]
    assert format_bind_value(ArrayParameter(hostile)) == format_bind_value(hostile)


def test_only_lists_of_strings_or_of_integers_are_rebound() -> None:
    at = datetime(2026, 12, 4, tzinfo=UTC)
    parameters = {
        "ids": ["a", "b"],
        "hashes": [1, 2],
        "none": [],
        "mixed": ["a", 1],
        "flags": [True],
        "at": at,
        "generation": 3,
    }
    out = bindable(parameters)
    assert all(isinstance(out[name], ArrayParameter) for name in ("ids", "hashes", "none"))
    assert [out[name] for name in ("mixed", "flags", "at", "generation")] == [
        ["a", 1],
        [True],
        at,
        3,
    ]
