"""Search reads recent turns by time and older ones through the text index; paged through to
the end, every query gives exactly what a plain reading of the stored turns gives."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import regex
from clickhouse_connect.driver.client import Client

from consumers.storage.clickhouse import Store
from queries import Reader
from queries.search import RECENT, search
from tests.integration.stored_rows import transcript_rows
from tests.unit.test_search_terms import EXAMPLES, NEAR_MISSES

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 6, tzinfo=UTC)
SPAN = 6 * RECENT
"""Turns over several recent windows: pages cross from the by-time reads to the index."""
BOTS = ("bot-a", "bot-b", "bot-c")
FILLER = ("the", "parcel", "is", "late", "thanks", "please", "check", "again")
BETWEEN = (
    " ",
    " ",
    " ",
    ", ",
    "\u00a0",
    "\u200b",
    " \u201c",
    "\u201d ",
    "\u2019",
    "\u2014",
    "\u2026",
    "\U0001f44d",
)
"""What speech-to-text engines put between words besides a space: a non-breaking or zero-width
space, curly quotes, an apostrophe, a dash, an ellipsis, an emoji."""
WORD = regex.compile(r"[\p{L}\p{N}\p{M}]+")
"""A word as a reader of the text sees it: letters, digits and their marks."""


@dataclass(frozen=True)
class Stored:
    session_id: str
    turn_id: str
    bot_id: str
    role: str
    started_at: datetime
    text: str


def _cased(word: str, rng: random.Random) -> str:
    return rng.choice((word, word.upper(), word.title()))


def _text(rng: random.Random) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(2, 5))]
    if rng.random() < 0.6:
        words.insert(rng.randrange(len(words) + 1), "order")
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words) + 1), "refund")
    if rng.random() < 0.15:
        words += ["order", "refund"]
    if rng.random() < 0.03:
        words.append("kumquat")
    cased = [_cased(w, rng) for w in words]
    joined = "".join(w + rng.choice(BETWEEN) for w in cased[:-1]) + cased[-1]
    return joined + rng.choice((".", "?", "!"))


def _load(store: Store, rng: random.Random) -> list[Stored]:
    """Sessions of four turns; each turn stored open (no text), then stopped, some then
    corrected with other words, some versions twice. Returns each turn's latest version."""
    latest: list[Stored] = []
    for n in range(120):
        session_id = f"s{n:03d}"
        bot_id = rng.choice(BOTS)
        begins = T0 + timedelta(microseconds=rng.randrange(int(SPAN / timedelta(microseconds=1))))
        if n % 10 == 0:
            begins = begins.replace(microsecond=0)  # starts that tie across sessions
        rows: list[dict[str, Any]] = []
        for index in range(4):
            started = begins + timedelta(seconds=20 * index)
            turn: dict[str, Any] = {
                "turn_id": f"t{index}",
                "bot_id": bot_id,
                "role": ("user", "assistant")[index % 2],
                "started_at": started,
            }
            stopped = started + timedelta(seconds=3)
            said = _text(rng)
            versions: list[dict[str, Any]] = [
                turn | {"stopped_at": None, "complete": False, "seq": 2 * index, "text": ""},
                turn
                | {"stopped_at": stopped, "complete": True, "seq": 2 * index + 1, "text": said},
            ]
            if rng.random() < 0.15:
                versions.append(versions[1] | {"seq": 50 + index, "text": _text(rng)})
            rows += [v for v in versions for _ in range(rng.choice((1, 1, 2)))]
            final = versions[-1]
            latest.append(
                Stored(session_id, final["turn_id"], bot_id, final["role"], started, final["text"])
            )
        store.insert("transcripts", transcript_rows(session_id, rows), generation=1)
    return latest


def _has_phrase(text: str, phrase: str) -> bool:
    """Whether the phrase's words are in the text one after another (separators between)."""
    searched = [w.lower() for w in WORD.findall(phrase)]
    written = [w.lower() for w in WORD.findall(text)]
    return any(
        written[at : at + len(searched)] == searched
        for at in range(len(written) - len(searched) + 1)
    )


def _expected(stored: list[Stored], q: str, **filters: Any) -> list[tuple[str, str]]:
    phrases = re.findall(r'"([^"]*)"', q)
    tokens = {t.lower() for t in WORD.findall(q)}
    hits = [
        s
        for s in stored
        if tokens <= {t.lower() for t in WORD.findall(s.text)}
        and all(_has_phrase(s.text, p) for p in phrases)
        and filters.get("bot_id", s.bot_id) in (s.bot_id, "")
        and filters.get("role", s.role) == s.role
        and filters.get("since", s.started_at) <= s.started_at
        and (filters.get("until") is None or s.started_at < filters["until"])
    ]
    hits.sort(key=lambda s: (s.started_at, s.session_id, s.turn_id), reverse=True)
    return [(s.session_id, s.turn_id) for s in hits]


def _paged(reader: Reader, q: str, limit: int, **filters: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    cursor = None
    while True:
        page = search(reader, q, limit=limit, cursor=cursor, **filters)
        assert len(page.items) <= limit
        found += [(h.session_id, h.turn_id) for h in page.items]
        if page.next_cursor is None:
            return found
        assert len(page.items) == limit, "a page short of its limit says there is more"
        cursor = page.next_cursor


MIDDLE = T0 + SPAN / 2
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("order", {}),
    ("REFUND", {}),
    ("kumquat", {}),
    ("Order refund", {}),
    ('"order refund"', {}),
    ('"refund order"', {"role": "user"}),
    ('"Order, refund." "thanks order"', {}),
    ("order", {"bot_id": "bot-b"}),
    ("refund", {"bot_id": ""}),
    ("refund", {"role": "assistant"}),
    ("order", {"until": MIDDLE}),
    ("refund", {"since": MIDDLE}),
    ("order", {"since": MIDDLE - RECENT / 2, "until": MIDDLE + RECENT / 2}),
    ("nowhere", {}),
    ("\u201cparcel\u201d thanks\u2026", {}),
]


def test_every_query_pages_through_exactly_the_matching_latest_turns(clickhouse: Client) -> None:
    store = Store(clickhouse)
    store.migrate()
    stored = _load(store, random.Random(20261202))
    reader = Reader(clickhouse)
    by_key = {(s.session_id, s.turn_id): s for s in stored}
    for q, filters in QUERIES:
        expected = _expected(stored, q, **filters)
        for limit in (7, 50) if len(expected) > 20 else (1, 7):
            assert _paged(reader, q, limit, **filters) == expected, (q, filters, limit)
    first = search(reader, "order", limit=5)
    assert [h.text for h in first.items] == [
        by_key[(h.session_id, h.turn_id)].text for h in first.items
    ]


def test_a_phrase_is_found_whatever_separates_its_words_recent_or_older(
    clickhouse: Client,
) -> None:
    """Each example of ``tests/unit/test_search_terms`` stored twice, a recent turn and one
    an hour older (read through the text index); each near miss beside them."""
    store = Store(clickhouse)
    store.migrate()
    texts = [text for _, text, _ in EXAMPLES] + [text for _, text in NEAR_MISSES]
    for session_id, begins in (("older", T0), ("recent", T0 + timedelta(hours=1))):
        rows = [
            {
                "turn_id": f"t{index:02d}",
                "role": "user",
                "started_at": begins + timedelta(seconds=index),
                "stopped_at": begins + timedelta(seconds=index, milliseconds=500),
                "complete": True,
                "seq": index,
                "text": text,
            }
            for index, text in enumerate(texts)
        ]
        store.insert("transcripts", transcript_rows(session_id, rows), generation=1)
    reader = Reader(clickhouse)
    for index, (phrase, text, shown) in enumerate(EXAMPLES):
        hits = search(reader, f'"{phrase}"').items
        found = [(h.session_id, h.turn_id, h.marked) for h in hits if h.text == text]
        turn_id = f"t{index:02d}"
        assert found == [("recent", turn_id, shown), ("older", turn_id, shown)], phrase
    for phrase, text in NEAR_MISSES:
        hits = search(reader, f'"{phrase}"').items
        assert [h.text for h in hits if h.text == text] == [], phrase
