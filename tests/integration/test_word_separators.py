"""Search splits a query into words where the engine's text index splits a text: for every
character this Python's Unicode tables know, the two agree."""

from __future__ import annotations

import sys
import unicodedata

import pytest
import regex
from clickhouse_connect.driver.client import Client

from consumers.storage.migrations import WORD_SEPARATORS
from consumers.storage.migrations.word_separators import written_out
from queries.search import Terms, phrase_pattern

pytestmark = pytest.mark.integration

ASSIGNED = [
    chr(c)
    for c in range(0x80, sys.maxunicode + 1)
    if unicodedata.category(chr(c)) not in ("Cn", "Cs")
]
BLANK = "\x01"
"""What the engine writes for a separator here: a character no word holds and no text has."""


def _blanked_by_engine(
    clickhouse: Client, chars: list[str], separators: str = WORD_SEPARATORS
) -> set[str]:
    blanked: set[str] = set()
    for at in range(0, len(chars), 20_000):
        part = chars[at : at + 20_000]
        out = clickhouse.query(
            "SELECT replaceRegexpAll({text:String}, {separators:String}, {blank:String})",
            parameters={
                "text": "".join(part),
                "separators": f"[{separators}]",
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


def test_the_separators_written_out_are_those_of_the_engine_s_unicode_classes(
    clickhouse: Client,
) -> None:
    """Every code point above ASCII: the list the index's preprocessor names is what the
    engine's own Unicode tables call punctuation, symbols, spaces, controls, format characters
    and variation selectors, as search's patterns name them. An engine with newer tables
    fails here, naming what it added."""
    every = [chr(c) for c in range(0x80, sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    by_classes = _blanked_by_engine(clickhouse, every)
    by_list = _blanked_by_engine(clickhouse, every, written_out())
    assert sorted(f"U+{ord(c):04X}" for c in by_classes ^ by_list) == []
    assert len(by_list) > 9_000


def _matched_by_engine(clickhouse: Client, pattern: str, texts: list[str]) -> list[bool]:
    """Whether the engine's ``match`` finds ``pattern`` in each text."""
    found: list[bool] = []
    for at in range(0, len(texts), 20_000):
        found += clickhouse.query(
            "SELECT arrayMap(t -> match(t, {pattern:String}), {texts:Array(String)})",
            parameters={"pattern": pattern, "texts": texts[at : at + 20_000]},
        ).result_rows[0][0]
    return [bool(f) for f in found]


def _each_matched_by_engine(
    clickhouse: Client, patterns: list[str], texts: list[str]
) -> list[bool]:
    """Whether the engine's ``match`` finds each pattern in the text beside it."""
    return [
        bool(f)
        for f in clickhouse.query(
            "SELECT arrayMap((t, p) -> match(t, p), "
            "{texts:Array(String)}, {patterns:Array(String)})",
            parameters={"patterns": patterns, "texts": texts},
        ).result_rows[0][0]
    ]


def test_the_engine_finds_a_phrase_across_every_character_that_ends_a_word(
    clickhouse: Client,
) -> None:
    """For every character this Python knows: "a b" is found in ``a``, it, ``b`` exactly when
    a query splits there (so when the text index does), and in the texts of ASCII characters
    the pattern for them finds what the other does."""
    texts = [f"a{c}b" for c in ASSIGNED]
    found = _matched_by_engine(clickhouse, phrase_pattern("a b"), texts)
    splits = [Terms.parse(t).tokens == ("a", "b") for t in texts]
    assert [
        f"U+{ord(c):04X}" for c, f, s in zip(ASSIGNED, found, splits, strict=True) if f != s
    ] == []
    ascii_texts = [f"a{chr(c)}b" for c in range(0x80)]
    for ascii_text in (False, True):
        pattern = phrase_pattern("a b", ascii_text=ascii_text)
        assert _matched_by_engine(clickhouse, pattern, ascii_texts) == [
            Terms.parse(t).tokens == ("a", "b") for t in ascii_texts
        ]


CASED = [
    c
    for c in ASSIGNED
    if (c.lower() != c or c.upper() != c) and unicodedata.category(c)[0] in "LMN"
]
"""The letters (and numbers, marks) with another case: those a word may hold."""


def test_the_engine_and_search_read_a_phrase_in_any_case_alike(clickhouse: Client) -> None:
    """A phrase's letters match the same letters of another case in the engine's ``(?i)`` (RE2)
    as in ``regex``'s, which marks them, but for the dotless i (U+0131), which ``regex`` alone
    takes for I. The index has the two apart too (a word with one is not found by a query with
    the other), so this changes at most the marks of a turn found for its other words."""
    pairs = [
        (written, searched)
        for written in CASED
        for searched in {written.lower(), written.upper()} - {written}
        if len(searched) == 1
    ]
    assert ("\u00c9", "\u00e9") in pairs
    assert ("\u1e9e", "\u00df") in pairs
    texts = [f"{written} x" for written, _ in pairs]
    patterns = [phrase_pattern(f"{searched} x") for _, searched in pairs]
    engine = _each_matched_by_engine(clickhouse, patterns, texts)
    here = [bool(regex.search(p, t)) for p, t in zip(patterns, texts, strict=True)]
    assert sum(here) > 2_700
    differ = {f"U+{ord(w):04X}" for (w, _), e, h in zip(pairs, engine, here, strict=True) if e != h}
    assert differ == {"U+0131"}
