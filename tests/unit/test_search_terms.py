"""Search queries: words and phrases parsed from ``q``, where they are in a text, and the text
marked with them."""

from __future__ import annotations

import html
import itertools
import re
import sys
import unicodedata

import pytest
import regex
from hypothesis import assume, example, given
from hypothesis import strategies as st

from queries import BadQueryError, Span
from queries.search import (
    MAX_PHRASES,
    MAX_QUERY_CHARS,
    MAX_TERMS,
    Terms,
    marked,
    phrase_pattern,
)


def _in_a_word(char: str) -> bool:
    """ASCII letters and digits, and every other character but punctuation, symbols, spaces,
    controls and format characters (zero-width spaces among them) and variation selectors."""
    if char.isascii():
        return char.isalnum()
    if "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef":
        return False
    category = unicodedata.category(char)
    return category[0] not in "PSZ" and category not in ("Cc", "Cf")


def _words(text: str) -> list[tuple[int, int]]:
    """Where the words the store's text index keeps are in ``text``."""
    spans, at = [], 0
    for inside, run in itertools.groupby(text, _in_a_word):
        length = len(list(run))
        if inside:
            spans.append((at, at + length))
        at += length
    return spans


def _findall(text: str) -> list[str]:
    return [text[start:end] for start, end in _words(text)]


ASSIGNED = st.characters(codec="utf-8", exclude_categories=["Cs", "Cn"])
"""Characters this Python's Unicode tables know: newer ones may have another category in the
engine's tables."""

# -- search terms ----------------------------------------------------------------------------

queries_text = st.text(ASSIGNED, max_size=MAX_QUERY_CHARS)
phrase_words = st.lists(st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True), min_size=2, max_size=4)


def test_words_are_lower_cased_once_each_in_the_order_given() -> None:
    terms = Terms.parse("Where IS my order, where is it?")
    assert terms.tokens == ("where", "is", "my", "order", "it")
    assert terms.phrases == ()


def test_quoted_phrases_are_kept_as_written_and_their_words_are_searched_too() -> None:
    terms = Terms.parse('refund "Order Number" "  late  delivery " "single"')
    assert terms.tokens == ("refund", "order", "number", "late", "delivery", "single")
    assert terms.phrases == ("Order Number", "late  delivery")
    assert terms.words == ("refund", "single")


def test_a_phrase_s_words_are_marked_where_they_make_it_up_not_where_they_stand_alone() -> None:
    text = "the order was late, then the order number was wrong"
    assert marked(text, Terms.parse('"order number"').spans(text)) == (
        "the order was late, then the <mark>order number</mark> was wrong"
    )
    assert marked(text, Terms.parse('"order number" Late').spans(text)) == (
        "the order was <mark>late</mark>, then the <mark>order number</mark> was wrong"
    )


@pytest.mark.parametrize("q", ["", " ", '""', "?!-", '" "', "\t\n"])
def test_a_query_without_a_word_is_refused_naming_q(q: str) -> None:
    with pytest.raises(BadQueryError) as refused:
        Terms.parse(q)
    assert refused.value.parameter == "q"


def test_an_over_long_query_is_refused_naming_q() -> None:
    assert Terms.parse("a" * MAX_QUERY_CHARS).tokens == ("a" * MAX_QUERY_CHARS,)
    with pytest.raises(BadQueryError) as refused:
        Terms.parse("a" * (MAX_QUERY_CHARS + 1))
    assert refused.value.parameter == "q"


def test_too_many_words_are_refused_naming_q() -> None:
    Terms.parse(" ".join(f"w{n}" for n in range(MAX_TERMS)))
    with pytest.raises(BadQueryError) as refused:
        Terms.parse(" ".join(f"w{n}" for n in range(MAX_TERMS + 1)))
    assert refused.value.parameter == "q"


def test_a_phrase_given_again_in_any_case_or_spacing_is_kept_once_as_first_written() -> None:
    terms = Terms.parse('"a b" "a b" "A  B" "a, b" "b a" "a b"')
    assert terms.phrases == ("a b", "b a")


def test_too_many_different_phrases_are_refused_naming_q() -> None:
    """Each phrase is a regular expression matched on every candidate row's text: a query of
    short phrases within MAX_QUERY_CHARS would otherwise hold dozens."""
    words = [f"w{n}" for n in range(MAX_PHRASES + 1)]
    pairs = [f'"{a} {b}"' for a, b in itertools.pairwise(words)]
    assert len(Terms.parse(" ".join(pairs)).phrases) == MAX_PHRASES
    with pytest.raises(BadQueryError) as refused:
        Terms.parse(" ".join([*pairs, f'"{words[-1]} {words[0]}"']))
    assert refused.value.parameter == "q"
    assert f"at most {MAX_PHRASES}" in str(refused.value)
    with pytest.raises(BadQueryError):  # the review's query: two words, many phrases
        Terms.parse(" ".join(['"the to" "to the"', *(f'"the {"to " * n}the"' for n in range(9))]))
    assert Terms.parse(" ".join(['"the to"'] * 50)).phrases == ("the to",)


@given(st.text(min_size=MAX_QUERY_CHARS + 1, max_size=MAX_QUERY_CHARS + 40))
def test_every_over_long_query_is_refused_naming_q(q: str) -> None:
    with pytest.raises(BadQueryError) as refused:
        Terms.parse(q)
    assert refused.value.parameter == "q"


def _parsed_or_refusal(q: str) -> Terms | BadQueryError:
    try:
        return Terms.parse(q)
    except BadQueryError as refused:
        return refused


@given(queries_text)
def test_any_query_parses_into_lower_case_words_or_is_refused_naming_q(q: str) -> None:
    terms = _parsed_or_refusal(q)
    if isinstance(terms, BadQueryError):
        assert terms.parameter == "q"
        return
    words = [w.lower() for w in _findall(q)]
    assert terms.tokens == tuple(dict.fromkeys(words))
    assert all(t and t == t.lower() for t in terms.tokens)
    assert 1 <= len(terms.tokens) <= MAX_TERMS
    for phrase in terms.phrases:
        assert phrase in q
        assert phrase == phrase.strip()
        assert len(_findall(phrase)) > 1


@given(phrase_words, st.sampled_from([" ", "  ", ", "]))
def test_a_quoted_phrase_of_several_words_is_kept(words: list[str], gap: str) -> None:
    phrase = gap.join(words)
    terms = Terms.parse(f'x "{phrase}" y')
    assert terms.phrases == (phrase,)
    assert set(w.lower() for w in words) <= set(terms.tokens)


# -- spans and marks -------------------------------------------------------------------------

texts = st.text(
    ASSIGNED | st.sampled_from("aAbB <>&\"' "),
    max_size=120,
)


@st.composite
def searches(draw: st.DrawFn) -> tuple[Terms, str]:
    """A text and a query of words (some of them in it, in another case) and phrases."""
    text = draw(texts)
    words = _findall(text)
    picked = draw(st.lists(st.sampled_from(words), max_size=4)) if words else []
    shuffled = [draw(st.sampled_from([w, w.upper(), w.lower(), w.swapcase()])) for w in picked]
    extra = draw(st.lists(st.from_regex(r"[a-z]{1,3}", fullmatch=True), max_size=2))
    q = " ".join(shuffled + extra)
    if len(words) >= 2 and draw(st.booleans()):
        at = draw(st.integers(0, len(words) - 2))
        found = _words(text)
        phrase = text[found[at][0] : found[at + 1][1]]
        q += f' "{draw(st.sampled_from([phrase, phrase.upper(), phrase.lower()]))}"'
    assume(_words(q) and '"' not in text)
    try:
        return Terms.parse(q), text
    except BadQueryError:
        assume(False)
        raise


def _same_word(searched: str, written: str) -> bool:
    """The two words alike in any case (as the engine's and ``regex``'s ``(?i)`` see case)."""
    return regex.fullmatch(f"(?i){regex.escape(searched)}", written) is not None


def _phrase_in(text: str, phrase: str) -> list[tuple[int, int]]:
    """Where ``phrase``'s words are in ``text``, one after another: from the first's start to
    the last's end (whatever is between two words of a text is separators only)."""
    searched, written = _findall(phrase), _words(text)
    return [
        (written[at][0], written[at + len(searched) - 1][1])
        for at in range(len(written) - len(searched) + 1)
        if all(
            _same_word(s, text[start:end])
            for s, (start, end) in zip(searched, written[at:], strict=False)
        )
    ]


def _covers_a_searched_term(terms: Terms, piece: str) -> bool:
    return any(w.lower() in terms.words for w in _findall(piece)) or any(
        _phrase_in(piece, p) for p in terms.phrases
    )


@given(searches())
@example((Terms(("order",), (), ("order",)), "ORDER order-Order"))
@example((Terms(("a", "b"), ("A b",), ("a", "b")), "xa b a"))
def test_spans_are_sorted_apart_inside_the_text_and_each_covers_a_searched_term(
    search: tuple[Terms, str],
) -> None:
    terms, text = search
    spans = terms.spans(text)
    for span in spans:
        assert 0 <= span.start < span.end <= len(text)
        assert _covers_a_searched_term(terms, text[span.start : span.end])
    for before, after in itertools.pairwise(spans):
        assert before.end < after.start, "overlapping or touching spans must be merged"


@given(searches())
def test_every_searched_word_in_the_text_is_inside_a_span(search: tuple[Terms, str]) -> None:
    terms, text = search
    spans = terms.spans(text)
    for start, end in _words(text):
        if text[start:end].lower() in terms.words:
            assert any(s.start <= start and end <= s.end for s in spans)
    for phrase in terms.phrases:
        for start, end in _phrase_in(text, phrase):
            assert any(s.start <= start and end <= s.end for s in spans)


# -- phrases ---------------------------------------------------------------------------------

EXAMPLES = [
    ("monday it should", "Monday? It should", "<mark>Monday? It should</mark>"),
    ("don't agree", "I don\u2019t agree.", "I <mark>don\u2019t agree</mark>."),
    ("quoted and", "the \u201cquoted\u201d and", "the \u201c<mark>quoted\u201d and</mark>"),
    ("tab here", "a tab\there", "a <mark>tab\there</mark>"),
    ("b tab", "b  tab", "<mark>b  tab</mark>"),
    ("b, tab!", "b tab", "<mark>b tab</mark>"),
    ("\u00e9t\u00e9 chaud", "\u00c9T\u00c9\u00a0CHAUD", "<mark>\u00c9T\u00c9\u00a0CHAUD</mark>"),
    ("gro\u00dfe stra\u00dfe", "GRO\u1e9eE STRA\u1e9eE", "<mark>GRO\u1e9eE STRA\u1e9eE</mark>"),
    ("order number", "order_number", "<mark>order_number</mark>"),
    ("thumbs up", "thumbs\U0001f44d\ufe0fup", "<mark>thumbs\U0001f44d\ufe0fup</mark>"),
]
"""A phrase, a text it is in, and the text marked: what speech-to-text writes between words
(punctuation, curly quotes, an apostrophe, a tab, two spaces, a non-breaking space, an emoji
with its presentation selector) need not be what the phrase has."""
NEAR_MISSES = [
    ("order num", "the order number"),
    ("order num", "the border num"),
    ("order number", "order numbers"),
    ("order number", "the order, the number"),
    ("monday it should", "should it, Monday?"),
    ("don't agree", "dont agree"),
    ("don't agree", "don\u2019 t-agreed"),
]
"""A phrase and a text holding its words, but not as the phrase: part of a word, another word
between, another order, a word written another way."""


def _spans_of(phrase: str, text: str) -> list[Span]:
    return Terms((), (phrase,), ()).spans(text)


@pytest.mark.parametrize(("phrase", "text", "shown"), EXAMPLES)
def test_a_phrase_matches_its_words_whatever_separates_them(
    phrase: str, text: str, shown: str
) -> None:
    assert Terms.parse(f'"{phrase}"').phrases == (phrase,)
    assert regex.search(phrase_pattern(phrase), text)
    assert regex.search(phrase_pattern(phrase, ascii_text=True), text) or not text.isascii()
    assert marked(text, _spans_of(phrase, text)) == shown


@pytest.mark.parametrize(("phrase", "text"), NEAR_MISSES)
def test_a_phrase_does_not_match_part_of_a_word_nor_its_words_apart(phrase: str, text: str) -> None:
    assert regex.search(phrase_pattern(phrase), text) is None
    assert regex.search(phrase_pattern(phrase, ascii_text=True), text) is None
    assert _spans_of(phrase, text) == []


SEPARATORS = [
    chr(c)
    for c in range(sys.maxunicode + 1)
    if unicodedata.category(chr(c)) not in ("Cs", "Cn") and not _in_a_word(chr(c))
]
SEPARATOR = st.sampled_from(
    " ,.?!-'\t\n\u00a0\u200b\u2019\u201c\u201d\u2014\u2026"
) | st.sampled_from(SEPARATORS)
"""Any character that ends a word, those speech-to-text writes most often first."""
WORD = st.text(ASSIGNED.filter(_in_a_word), min_size=1, max_size=6)
WORDS = phrase_words | st.lists(WORD, min_size=2, max_size=4)


@st.composite
def phrases_in_texts(draw: st.DrawFn) -> tuple[str, str, str, str]:
    """A phrase, and before, in and after: a text holding its words in any case, with any
    separators between them, at either end a separator or the text's edge.

    ``_same_word`` compiles a pattern, and ``regex`` makes room in a full pattern cache (500,
    filled by the tests before) with the global random generator, which hypothesis reports as
    a strategy using it: emptied first, the cache has room for the few patterns drawn here."""
    regex.purge()
    words = draw(WORDS)
    written = []
    for word in words:
        cased = draw(st.sampled_from([word, word.upper(), word.lower(), word.swapcase()]))
        written.append(cased if _findall(cased) == [cased] and _same_word(word, cased) else word)
    gaps = [draw(st.text(SEPARATOR, min_size=1, max_size=3)) for _ in words[1:]]
    before, after = (draw(st.text(SEPARATOR, max_size=3)) for _ in "ab")
    return " ".join(words), before, written[0] + "".join(map(str.__add__, gaps, written[1:])), after


@given(phrases_in_texts())
@example(("monday it should", "", "Monday? It should", "."))
def test_any_words_with_any_separators_between_them_match_the_phrase(
    found: tuple[str, str, str, str],
) -> None:
    phrase, before, core, after = found
    text = before + core + after
    assert regex.search(phrase_pattern(phrase), text)
    if text.isascii():
        assert regex.search(phrase_pattern(phrase, ascii_text=True), text)
    assert _spans_of(phrase, text) == [Span(start=len(before), end=len(before) + len(core))]


@given(texts, WORDS)
@example("xa b a", ["a", "b"])
@example("a b a b a", ["a", "b", "a"])
def test_a_phrase_is_where_its_words_are_one_after_another_in_the_text(
    text: str, words: list[str]
) -> None:
    phrase = " ".join(words)
    assume(_findall(phrase) == words)
    expected = _phrase_in(text, phrase)
    assert bool(regex.search(phrase_pattern(phrase), text)) == bool(expected)
    if text.isascii():
        assert bool(regex.search(phrase_pattern(phrase, ascii_text=True), text)) == bool(expected)
    spans = _spans_of(phrase, text)
    for start, end in expected:
        assert any(s.start <= start and end <= s.end for s in spans)
    for span in spans:
        assert _phrase_in(text[span.start : span.end], phrase)


def _unmarked(marked_text: str) -> str:
    return html.unescape(marked_text.replace("<mark>", "").replace("</mark>", ""))


@given(searches())
@example((Terms(("mark",), (), ("mark",)), "<mark>mark</mark> & &amp; &lt;"))
def test_removing_the_marks_and_unescaping_gives_back_the_text(search: tuple[Terms, str]) -> None:
    terms, text = search
    spans = terms.spans(text)
    shown = marked(text, spans)
    assert _unmarked(shown) == text
    assert shown.count("<mark>") == shown.count("</mark>") == len(spans)
    between = re.findall(r"<mark>(.*?)</mark>", shown, re.S)
    assert between == [html.escape(text[s.start : s.end]) for s in spans]
    outside = re.sub(r"<mark>.*?</mark>", "", shown, flags=re.S)
    assert "<" not in outside, "text outside the marks must be escaped"
    assert ">" not in outside


@given(texts)
def test_marking_nothing_is_escaping(text: str) -> None:
    assert marked(text, []) == html.escape(text)
    assert marked(text, [Span(start=0, end=len(text))] if text else []) == (
        f"<mark>{html.escape(text)}</mark>" if text else ""
    )
