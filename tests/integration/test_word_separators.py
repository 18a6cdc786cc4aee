"""Search splits a query into words where the engine's text index splits a text: for every
character this Python's Unicode tables know, the two agree."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from clickhouse_connect.driver.client import Client

from consumers.storage.migrations import WORD_SEPARATORS
from queries.search import Terms

pytestmark = pytest.mark.integration

ASSIGNED = [
    chr(c)
    for c in range(0x80, sys.maxunicode + 1)
    if unicodedata.category(chr(c)) not in ("Cn", "Cs")
]
BLANK = "\x01"
"""What the engine writes for a separator here: a character no word holds and no text has."""


def _blanked_by_engine(clickhouse: Client, chars: list[str]) -> set[str]:
    blanked: set[str] = set()
    for at in range(0, len(chars), 20_000):
        part = chars[at : at + 20_000]
        out = clickhouse.query(
            "SELECT replaceRegexpAll({text:String}, {separators:String}, {blank:String})",
            parameters={
                "text": "".join(part),
                "separators": f"[{WORD_SEPARATORS}]",
                "blank": BLANK,
            },
        ).result_rows[0][0]
        assert len(out) == len(part), "the engine blanks one character for one"
        blanked |= {c for c, o in zip(part, out, strict=True) if o == BLANK}
    return blanked


def test_the_engine_and_search_end_words_at_the_same_characters(clickhouse: Client) -> None:
    blanked = _blanked_by_engine(clickhouse, ASSIGNED)
    splits_a_query = {c for c in ASSIGNED if Terms.parse(f"a{c}b").tokens == ("a", "b")}
    assert {f"U+{ord(c):04X}" for c in blanked ^ splits_a_query} == set()
    assert {"\u201c", "\u2019", "\u00a0", "\u200b", "\ufe0f", "\U0001f44d"} <= blanked
