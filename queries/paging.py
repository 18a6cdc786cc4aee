"""Keyset pagination: a page ends with an opaque cursor that holds the sort key of its last
item, so the next page starts right after it whatever was inserted meanwhile (no offsets:
an item is never shown twice or skipped because newer ones arrived)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from queries.errors import BadQueryError
from schemas.models import MAX_ID_CHARS

if TYPE_CHECKING:
    from queries.reader import Reader

MAX_PAGE = 500
MAX_CURSOR_CHARS = 4 * (3 * 6 * MAX_ID_CHARS + 200) // 3
"""A cursor holds its kind and a key of up to three parts (a time and two identifiers, say),
each character of an identifier at most 6 bytes of JSON (``\\u001f``), in base64: no cursor a
listing makes is longer (one with long non-ASCII ids once was, and was refused)."""
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)
"""The times a store column can hold (``DateTime64(6)``); a bound outside is moved to the edge,
which selects the same rows."""


def page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise BadQueryError("limit", f"must be from 1 to {MAX_PAGE}, got {limit}")
    return limit


def encode_cursor(kind: str, *key: Any) -> str:
    raw = json.dumps([kind, *(_plain(k) for k in key)], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, shape: tuple[type, ...]) -> tuple[Any, ...]:
    """The key a cursor of ``kind`` holds, typed by ``shape``; anything else is a ``BadQueryError``
    naming ``cursor`` (a cursor of another listing, edited or truncated)."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        found, *key = raw
        if found != kind or len(key) != len(shape):
            raise ValueError
        return tuple(_typed(value, want) for value, want in zip(key, shape, strict=True))
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise BadQueryError("cursor", f"not a cursor of this {kind} listing") from None


def _plain(value: Any) -> Any:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def _typed(value: Any, want: type) -> Any:
    if want is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None or not EARLIEST <= parsed <= LATEST:
            raise ValueError
        return parsed
    if not isinstance(value, want) or isinstance(value, bool):
        raise ValueError
    return value


def bounded(value: datetime) -> datetime:
    """A caller's time bound, in UTC and within what the store can hold."""
    return min(max(as_utc(value), EARLIEST), LATEST)


def refuse_reversed(since: datetime | None, until: datetime | None) -> None:
    """A range's bounds (``bounded``) must come in order; the answer says where it ends, which
    a caller who gave only ``since`` did not choose (the API's or the command line's
    default)."""
    if since is not None and until is not None and since >= until:
        raise BadQueryError("since", f"must be before until, {until.isoformat()}")


def as_utc(value: datetime) -> datetime:
    """Aware and in UTC: the engine hands back naive datetimes for UTC columns."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def of_bot(bot_id: str | None) -> str:
    """SQL of whether a row is of the bot ``{bot_id}``, when a read asks for one."""
    return "bot_id = {bot_id:String}" if bot_id else "1"


def window_batches(
    reader: Reader,
    sql: str,
    parameters: Mapping[str, Any],
    bot_id: str | None,
    window: tuple[datetime, datetime],
    after: tuple[datetime, str],
    sizes: Iterator[int],
) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows of ``sql`` in batches of ``sizes``, each batch starting after the last row of
    the one before, until one comes short. ``sql`` selects a time and an id first, newest
    first, below ``({after_at}, {after_id})``, at most ``{batch}`` rows, in
    ``[{window_lo}, {window_hi})`` and where ``{bot}`` holds (``of_bot``)."""
    sql = sql.replace("{bot}", of_bot(bot_id))
    bound = {**parameters, "bot_id": bot_id or "", "window_lo": window[0], "window_hi": window[1]}
    after_at, after_id = after
    for batch in sizes:
        rows = reader.rows(sql, **bound, after_at=after_at, after_id=after_id, batch=batch)
        if rows:
            yield rows
        if len(rows) < batch:
            return
        after_at, after_id = as_utc(rows[-1][0]), str(rows[-1][1])
