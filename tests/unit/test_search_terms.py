"""Search queries: words and phrases parsed from ``q``, where they are in a text, and the text
marked with them."""

from __future__ import annotations

import html
import itertools
import re
import unicodedata

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from queries import BadQueryError, Span
from queries.search import MAX_QUERY_CHARS, MAX_TERMS, Terms, marked


def _in_a_word(char: str) -> bool:
    """ASCII letters and digits, and every other character but punctuation, symbols, spaces,
    controls and format characters (zero-width spaces among them)."""
    if char.isascii():
        return char.isalnum()
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


def _covers_a_searched_term(terms: Terms, piece: str) -> bool:
    return any(w.lower() in terms.tokens for w in _findall(piece)) or any(
        re.search(re.escape(p), piece, re.I) for p in terms.phrases
    )


@given(searches())
@example((Terms(("order",), ()), "ORDER order-Order"))
@example((Terms(("a", "b"), ("A b",)), "xa b a"))
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
        if text[start:end].lower() in terms.tokens:
            assert any(s.start <= start and end <= s.end for s in spans)
    for phrase in terms.phrases:
        for match in re.finditer(re.escape(phrase), text, re.I):
            assert any(s.start <= match.start() and match.end() <= s.end for s in spans)


def _unmarked(marked_text: str) -> str:
    return html.unescape(marked_text.replace("<mark>", "").replace("</mark>", ""))


@given(searches())
@example((Terms(("mark",), ()), "<mark>mark</mark> & &amp; &lt;"))
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
