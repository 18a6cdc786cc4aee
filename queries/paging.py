"""Keyset pagination: a page ends with an opaque cursor that holds the sort key of its last
item, so the next page starts right after it whatever was inserted meanwhile (no offsets:
an item is never shown twice or skipped because newer ones arrived). It holds its query's
``fingerprint`` too, and continues that query only."""

from __future__ import annotations

import base64
import hashlib
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
"""A cursor holds its query's fingerprint and a key of up to three parts (a time and two
identifiers, say), each character of an identifier at most 6 bytes of JSON (``\\u001f``), in
base64: no cursor a listing makes is longer (one with long non-ASCII ids once was, and was
refused)."""
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)
"""The times a store column can hold (``DateTime64(6)``); a bound outside is moved to the edge,
which selects the same rows."""
_FOREIGN = (
    "belongs to another query (another listing, or other filters or words) or to an older "
    "version of the store: leave it out to start from the first page"
)
_MALFORMED = "is not a cursor of this listing (edited or cut short?): leave it out to start again"


def page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise BadQueryError("limit", f"must be from 1 to {MAX_PAGE}, got {limit}")
    return limit


def fingerprint(kind: str, filters: Mapping[str, Any]) -> str:
    """What a cursor continues: the listing's kind and every filter that shapes it (not the
    page size), unset ones left out, hashed to 8 URL-safe characters. A cursor is a position
    in one query's order: another query's page started there would skip what it never listed
    (48 bits: two queries share one about once in 10^14 pairs)."""
    shaping = {name: _plain(value) for name, value in filters.items() if value is not None}
    canonical = json.dumps([kind, shaping], separators=(",", ":"), sort_keys=True)
    digest = hashlib.blake2b(canonical.encode(), digest_size=6).digest()
    return base64.urlsafe_b64encode(digest).decode()


def encode_cursor(query: str, *key: Any) -> str:
    """A cursor after ``key`` in the listing of ``query`` (its ``fingerprint``)."""
    raw = json.dumps([query, *(_plain(k) for k in key)], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(query: str, cursor: str, shape: tuple[type, ...]) -> tuple[Any, ...]:
    """The key a cursor of ``query`` holds, typed by ``shape``. A cursor of another query (a
    ``fingerprint`` of another listing, or of the same with other filters; any cursor from
    before cursors held one) or anything else (edited, truncated) is a ``BadQueryError``
    naming ``cursor``, each saying which."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise BadQueryError("cursor", _MALFORMED) from None
    if not isinstance(raw, list) or not raw:
        raise BadQueryError("cursor", _MALFORMED)
    found, *key = raw
    if found != query:
        raise BadQueryError("cursor", _FOREIGN)
    try:
        if len(key) != len(shape):
            raise ValueError
        return tuple(_typed(value, want) for value, want in zip(key, shape, strict=True))
    except (ValueError, TypeError):
        raise BadQueryError("cursor", _MALFORMED) from None


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
    """A caller's time bound, in UTC and within what the store can hold: no row lies outside,
    so the bound selects the rows asked for (``until=9999-12-31``, all of them)."""
    return min(max(as_utc(value), EARLIEST), LATEST)


def refuse_reversed(since: datetime | None, until: datetime | None) -> None:
    """A range's bounds must come in order as asked: once ``bounded``, two bounds past the
    same edge of the store's times would meet (2300 to 2400 is a range, holding nothing).
    Both are named, as ``until`` may be a default the caller did not choose (now, say)."""
    if since is not None and until is not None and since >= until:
        raise BadQueryError(
            "since", f"{since.isoformat()} must be before until ({until.isoformat()})"
        )


def store_range(
    since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """A listing's optional range as the store reads it: checked as asked, then bounded (in
    that order: see ``refuse_reversed``)."""
    refuse_reversed(since, until)
    return (None if since is None else bounded(since)), (None if until is None else bounded(until))


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
