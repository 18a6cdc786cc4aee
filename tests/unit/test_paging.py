"""Keyset paging: cursors give back their key to the query they came from and are refused,
naming ``cursor``, by any other; a range is checked as asked and read within the store's times;
the sessions listing's time windows cover the range in order."""

from __future__ import annotations

import base64
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from queries import BadQueryError
from queries.paging import (
    EARLIEST,
    LATEST,
    decode_cursor,
    encode_cursor,
    fingerprint,
    refuse_reversed,
    store_range,
)
from queries.sessions import WINDOWS, _windows
from schemas.models import MAX_ID_CHARS

WORD = re.compile(r"[0-9A-Za-z\u0080-\U0010ffff]+")
"""What the store's text index keeps as one token (ASCII non-alphanumerics split words)."""


def test_a_reversed_range_is_refused_naming_both_bounds() -> None:
    """A caller who gave only ``since`` learns the end a default chose (now, say), and one
    who gave both reads which is which."""
    until = datetime(2026, 12, 6, 5, 40, tzinfo=UTC)
    with pytest.raises(BadQueryError) as e:
        refuse_reversed(until + timedelta(days=1), until)
    assert str(e.value) == (
        "since: 2026-12-07T05:40:00+00:00 must be before until (2026-12-06T05:40:00+00:00)"
    )
    assert e.value.parameter == "since"
    refuse_reversed(until - timedelta(microseconds=1), until)
    refuse_reversed(until, None)


far = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda d: d.replace(tzinfo=UTC)
)
"""Any time a caller can ask with, inside the store's times or beyond them."""


@given(far, far)
@example(datetime(2300, 1, 1, tzinfo=UTC), datetime(2400, 1, 1, tzinfo=UTC))
@example(datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC))
def test_a_range_is_checked_as_asked_and_read_within_the_stores_times(
    since: datetime, until: datetime
) -> None:
    """Bounds beyond the times the store holds select the same rows at its edges, so they are
    answered; only their order as asked can refuse them (2300 to 2400 holds nothing, it is not
    reversed, though both bounds move to the same edge)."""
    if since >= until:
        with pytest.raises(BadQueryError, match=f"^since: {re.escape(since.isoformat())} must"):
            store_range(since, until)
        return
    low, high = store_range(since, until)
    assert low is not None
    assert high is not None
    assert EARLIEST <= low <= high <= LATEST
    assert low == min(max(since, EARLIEST), LATEST)
    assert high == min(max(until, EARLIEST), LATEST)
    assert store_range(since, None) == (low, None)


# -- cursors ---------------------------------------------------------------------------------

kinds = st.sampled_from(["sessions", "search", "incomplete"])
aware = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(2261, 12, 31), timezones=st.timezones()
)
"""Any time the store can hold (a cursor holds a stored item's time), in any zone."""
key_parts: dict[type, st.SearchStrategy[Any]] = {
    datetime: aware,
    str: st.text(max_size=MAX_ID_CHARS),
    int: st.integers(min_value=-(2**63), max_value=2**64),
}
shapes = st.lists(st.sampled_from([datetime, str, int]), min_size=1, max_size=3).map(tuple)


@st.composite
def keyed(draw: st.DrawFn) -> tuple[tuple[type, ...], tuple[Any, ...]]:
    shape = draw(shapes)
    return shape, tuple(draw(key_parts[t]) for t in shape)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decoded_or_refusal(
    kind: str, cursor: str, shape: tuple[type, ...]
) -> tuple[Any, ...] | BadQueryError:
    try:
        return decode_cursor(kind, cursor, shape)
    except BadQueryError as refused:
        return refused


def _refused_naming_cursor(kind: str, cursor: str, shape: tuple[type, ...]) -> None:
    with pytest.raises(BadQueryError) as refused:
        decode_cursor(kind, cursor, shape)
    assert refused.value.parameter == "cursor"
    assert str(refused.value).startswith("cursor: ")


@given(kinds, keyed())
def test_a_cursor_gives_back_the_key_it_was_made_from(
    kind: str, shaped: tuple[tuple[type, ...], tuple[Any, ...]]
) -> None:
    shape, key = shaped
    cursor = encode_cursor(kind, *key)
    assert re.fullmatch(r"[A-Za-z0-9_-]*", cursor), "a cursor must be safe in a URL as it is"
    decoded = decode_cursor(kind, cursor, shape)
    assert len(decoded) == len(key)
    for value, given_value, want in zip(decoded, key, shape, strict=True):
        assert type(value) is want
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0)
            assert value == given_value.astimezone(UTC)
        else:
            assert value == given_value


@given(kinds, kinds, keyed())
def test_a_cursor_of_another_listing_or_shape_is_refused(
    kind: str, other: str, shaped: tuple[tuple[type, ...], tuple[Any, ...]]
) -> None:
    shape, key = shaped
    cursor = encode_cursor(kind, *key)
    if other != kind:
        _refused_naming_cursor(other, cursor, shape)
    _refused_naming_cursor(kind, cursor, (*shape, str))
    if len(shape) > 1:
        _refused_naming_cursor(kind, cursor, shape[:-1])


@given(kinds, keyed(), st.data())
def test_a_truncated_cursor_is_refused(
    kind: str, shaped: tuple[tuple[type, ...], tuple[Any, ...]], data: st.DataObject
) -> None:
    shape, key = shaped
    cursor = encode_cursor(kind, *key)
    cut = data.draw(st.integers(min_value=0, max_value=len(cursor) - 1))
    _refused_naming_cursor(kind, cursor[:cut], shape)


@given(
    kinds,
    shapes,
    st.one_of(
        st.text(),
        st.binary().map(_b64),
        json_values.map(lambda v: _b64(json.dumps(v).encode())),
        st.tuples(kinds, json_values).map(lambda v: _b64(json.dumps([v[0], v[1]]).encode())),
        st.lists(json_values, max_size=3).map(
            lambda v: _b64(json.dumps(["sessions", *v]).encode())
        ),
    ),
)
@example("sessions", (datetime, str), _b64(b'["sessions","2026-11-21T00:00:00",""]'))
@example("sessions", (datetime, str), _b64(b'["sessions",true,""]'))
@example("incomplete", (int,), _b64(b'["incomplete",true]'))
@example("incomplete", (str,), _b64(b'"incomplete"'))
@example("incomplete", (str,), _b64(b"\xff\xfe"))
@example("incomplete", (str,), "é")
@example("incomplete", (int,), _b64(b'["incomplete",' + b"9" * 5000 + b"]"))
def test_any_string_is_either_a_key_of_the_listing_or_refused_naming_cursor(
    kind: str, shape: tuple[type, ...], cursor: str
) -> None:
    key = _decoded_or_refusal(kind, cursor, shape)
    if isinstance(key, BadQueryError):
        assert key.parameter == "cursor"
        return
    assert len(key) == len(shape)
    for value, want in zip(key, shape, strict=True):
        assert type(value) is want
        if isinstance(value, datetime):
            assert value.tzinfo is not None


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_a_deeply_nested_cursor_is_refused_naming_cursor(depth: int) -> None:
    """A cursor is caller input (the query string): no shape of it may escape as anything
    but a refusal, which the service answers with 400."""
    _refused_naming_cursor("sessions", _b64(b"[" * depth), (datetime, str))


# -- a cursor belongs to its query -------------------------------------------------------------

FILTERS = ("bot_id", "since", "until", "role", "q", "min_turns", "complete", "state")
filter_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.text(max_size=20)
    | aware
    | st.lists(st.text(max_size=5), max_size=3)
)
asked_filters = st.dictionaries(st.sampled_from(FILTERS), filter_values)
"""A query's filters, as a listing hands them to ``fingerprint`` (None: unset)."""


def _same(asked: Any, other: Any) -> bool:
    """Whether two values of a filter ask for the same listing: equal, and of one type (1 and
    True are two filters; one instant in two zones is one)."""
    return bool(asked == other) and type(asked) is type(other)


@given(kinds, asked_filters, keyed())
def test_a_cursor_continues_the_query_it_came_from(
    kind: str, asked: dict[str, Any], shaped: tuple[tuple[type, ...], tuple[Any, ...]]
) -> None:
    """Asked again, in any order of its filters, unset ones given as None or left out, the
    query takes its cursor; the cursor stays short and safe in a URL."""
    shape, key = shaped
    query = fingerprint(kind, asked)
    assert re.fullmatch(r"[A-Za-z0-9_-]{8}", query)
    cursor = encode_cursor(query, *key)
    again = dict(reversed(asked.items())) | {name: None for name in FILTERS if name not in asked}
    assert len(decode_cursor(fingerprint(kind, again), cursor, shape)) == len(shape)


@given(kinds, kinds, asked_filters, st.sampled_from(FILTERS), filter_values, keyed())
@example("sessions", "sessions", {"bot_id": "odd-bot"}, "bot_id", "simulator", ((str,), ("a",)))
@example("sessions", "sessions", {"bot_id": "odd-bot"}, "bot_id", None, ((str,), ("a",)))
@example("search", "search", {"q": [["order"], []]}, "q", [["hello"], []], ((str,), ("a",)))
@example("search", "search", {"min_turns": 1}, "min_turns", True, ((str,), ("a",)))
@example("sessions", "search", {}, "q", None, ((str,), ("a",)))
def test_a_cursor_is_refused_by_any_other_query_naming_cursor(
    kind: str,
    other_kind: str,
    asked: dict[str, Any],
    changed: str,
    value: Any,
    shaped: tuple[tuple[type, ...], tuple[Any, ...]],
) -> None:
    """Another listing, or a filter changed, added or removed: the cursor's position in its
    own order would skip what the other query lists before it."""
    assume(other_kind != kind or not _same(asked.get(changed), value))
    shape, key = shaped
    cursor = encode_cursor(fingerprint(kind, asked), *key)
    other = fingerprint(other_kind, asked | {changed: value})
    with pytest.raises(BadQueryError) as refused:
        decode_cursor(other, cursor, shape)
    assert refused.value.parameter == "cursor"
    assert str(refused.value).startswith("cursor: belongs to another query")


@given(kinds, asked_filters, keyed())
def test_a_cursor_handed_out_before_cursors_held_their_query_is_refused_saying_so(
    kind: str, asked: dict[str, Any], shaped: tuple[tuple[type, ...], tuple[Any, ...]]
) -> None:
    """Such a cursor held its listing's kind where a fingerprint now stands."""
    shape, key = shaped
    old = base64.urlsafe_b64encode(json.dumps([kind, *map(_plain, key)]).encode()).decode()
    with pytest.raises(BadQueryError, match=r"another query .* or to an older version of the"):
        decode_cursor(fingerprint(kind, asked), old.rstrip("="), shape)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# -- the listing's time windows ----------------------------------------------------------------

instants = st.datetimes(
    min_value=EARLIEST.replace(tzinfo=None), max_value=LATEST.replace(tzinfo=None)
).map(lambda d: d.replace(tzinfo=UTC))
"""The times the store can hold, which is where the listing walks (bounds outside it are
moved to its edges first)."""


@given(instants, st.none() | instants)
@example(datetime(2026, 11, 21, tzinfo=UTC), None)
@example(datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 20, 23, 30, tzinfo=UTC))
@example(datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
@example(LATEST, None)
@example(LATEST, EARLIEST)
@example(EARLIEST, None)
@example(EARLIEST + timedelta(minutes=30), EARLIEST)
def test_windows_are_consecutive_descending_and_reach_down_to_since(
    newest: datetime, since: datetime | None
) -> None:
    windows = list(_windows(newest, since))
    floor = since or EARLIEST
    top = newest + timedelta(microseconds=1)  # the newest instant itself is included
    for lo, hi in windows:
        assert lo < hi
    for (lo, _), (_, hi) in itertools.pairwise(windows):
        assert hi == lo, "each window starts where the one before it (newer) stopped"
    if floor >= top:
        assert windows == [], "nothing lies between since and the newest instant"
        return
    assert windows, "a non-empty range must be covered"
    assert windows[0][1] == top
    assert windows[-1][0] == floor, "the windows must reach down to since"
    assert len(windows) <= len(WINDOWS)
