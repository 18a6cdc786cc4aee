"""The query library's pure logic: cursors, search terms and their marks, the listing's time
windows, and the log redactor. Properties where an invariant must hold for every input."""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from hypothesis import assume, example, given
from hypothesis import strategies as st

from queries import BadQueryError, Span
from queries.paging import EARLIEST, LATEST, decode_cursor, encode_cursor
from queries.search import MAX_QUERY_CHARS, MAX_TERMS, Terms, marked
from queries.sessions import WINDOWS, _windows
from tstore.logging import MASK, Redactor, configure_logging

WORD = re.compile(r"[0-9A-Za-z\u0080-\U0010ffff]+")
"""What the store's text index keeps as one token (ASCII non-alphanumerics split words)."""

# -- cursors ---------------------------------------------------------------------------------

kinds = st.sampled_from(["sessions", "search", "incomplete"])
aware = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(2261, 12, 31), timezones=st.timezones()
)
"""Any time the store can hold (a cursor holds a stored item's time), in any zone."""
key_parts: dict[type, st.SearchStrategy[Any]] = {
    datetime: aware,
    str: st.text(),
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


# -- search terms ----------------------------------------------------------------------------

queries_text = st.text(max_size=MAX_QUERY_CHARS)
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
    words = [w.lower() for w in WORD.findall(q)]
    assert terms.tokens == tuple(dict.fromkeys(words))
    assert all(t and t == t.lower() for t in terms.tokens)
    assert 1 <= len(terms.tokens) <= MAX_TERMS
    for phrase in terms.phrases:
        assert phrase in q
        assert phrase == phrase.strip()
        assert len(WORD.findall(phrase)) > 1


@given(phrase_words, st.sampled_from([" ", "  ", ", "]))
def test_a_quoted_phrase_of_several_words_is_kept(words: list[str], gap: str) -> None:
    phrase = gap.join(words)
    terms = Terms.parse(f'x "{phrase}" y')
    assert terms.phrases == (phrase,)
    assert set(w.lower() for w in words) <= set(terms.tokens)


# -- spans and marks -------------------------------------------------------------------------

texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from("aAbB <>&\"' "),
    max_size=120,
)


@st.composite
def searches(draw: st.DrawFn) -> tuple[Terms, str]:
    """A text and a query of words (some of them in it, in another case) and phrases."""
    text = draw(texts)
    words = WORD.findall(text)
    picked = draw(st.lists(st.sampled_from(words), max_size=4)) if words else []
    shuffled = [draw(st.sampled_from([w, w.upper(), w.lower(), w.swapcase()])) for w in picked]
    extra = draw(st.lists(st.from_regex(r"[a-z]{1,3}", fullmatch=True), max_size=2))
    q = " ".join(shuffled + extra)
    if len(words) >= 2 and draw(st.booleans()):
        at = draw(st.integers(0, len(words) - 2))
        found = list(WORD.finditer(text))
        phrase = text[found[at].start() : found[at + 1].end()]
        q += f' "{draw(st.sampled_from([phrase, phrase.upper(), phrase.lower()]))}"'
    assume(WORD.search(q) and '"' not in text)
    try:
        return Terms.parse(q), text
    except BadQueryError:
        assume(False)
        raise


def _covers_a_searched_term(terms: Terms, piece: str) -> bool:
    return any(w.lower() in terms.tokens for w in WORD.findall(piece)) or any(
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
    for match in WORD.finditer(text):
        if match.group().lower() in terms.tokens:
            assert any(s.start <= match.start() and match.end() <= s.end for s in spans)
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


# -- the log redactor --------------------------------------------------------------------------

secrets = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="*"),
    min_size=4,
    max_size=30,
)
words_around = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="*"), max_size=12
)


@st.composite
def nested_with(draw: st.DrawFn, secret: str) -> Any:
    """An event value with ``secret`` somewhere inside strings, however deep."""
    holding = st.builds(lambda a, b: f"{a}{secret}{b}", words_around, words_around)
    leaves = holding | words_around | st.integers() | st.none() | st.booleans()
    return draw(
        st.recursive(
            leaves,
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.lists(inner, max_size=3).map(tuple)
                | st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), inner, max_size=3)
            ),
            max_leaves=10,
        )
    )


def _strings(value: Any) -> Iterator[str]:
    """Every string value inside ``value`` (not the keys of its dicts)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


@given(st.data(), secrets)
def test_a_given_secret_is_masked_anywhere_in_an_event(data: st.DataObject, secret: str) -> None:
    event = {
        "event": data.draw(st.builds(lambda a, b: f"{a}{secret}{b}", words_around, words_around)),
        "detail": data.draw(nested_with(secret)),
        "error": RuntimeError(f"failed with {secret}"),
        "deep": {"a": [{"b": (data.draw(nested_with(secret)),)}]},
    }
    cleaned = Redactor([secret, ""])(None, "info", event)
    assert set(cleaned) == set(event)
    for text in _strings(cleaned):
        assert secret not in text
    assert MASK in cleaned["event"]


def test_the_redactor_keeps_what_holds_no_secret() -> None:
    event = {"event": "served", "count": 3, "items": ["a", ("b", None)], "ok": True}
    assert Redactor(["s3cret"])(None, "info", dict(event)) == event


def test_a_secret_in_a_nested_key_is_masked_too() -> None:
    """ "Anywhere" includes the keys of nested dicts: a mapping keyed by what a caller sent."""
    cleaned = Redactor(["tok-12345678"])(None, "info", {"seen": {"tok-12345678": 1}})
    assert "tok-12345678" not in json.dumps(cleaned)


hosts = st.from_regex(r"[a-z0-9.-]{1,20}(:[0-9]{1,5})?", fullmatch=True)
users = st.from_regex(r"[A-Za-z0-9._~%!$&'()+,;=-]{0,12}", fullmatch=True)
passwords = st.from_regex(r"[A-Za-z0-9._~%!$&'()*+,;=:-]{1,24}", fullmatch=True)
"""What RFC 3986 allows in a URL's userinfo (``@`` is written ``%40``)."""


@given(
    st.sampled_from(["http", "https", "clickhouse", "kafka+ssl"]),
    users,
    passwords,
    hosts,
    st.sampled_from(["", "/", "/db?x=1"]),
    words_around,
)
def test_a_password_in_a_url_is_masked_by_its_shape(
    scheme: str, user: str, password: str, host: str, rest: str, before: str
) -> None:
    assume("@" not in before and "bearer" not in before.lower())
    text = f"{before} {scheme}://{user}:{password}@{host}{rest} after"
    assert Redactor().mask(text) == f"{before} {scheme}://{user}:{MASK}@{host}{rest} after"


@given(
    st.sampled_from(["Bearer", "bearer", "BEARER"]),
    st.from_regex(r"[A-Za-z0-9._~+/-]+=*", fullmatch=True),
)
def test_a_bearer_token_is_masked_by_its_shape(word: str, token: str) -> None:
    text = f'{{"Authorization": "{word} {token}"}}'
    assert Redactor().mask(text) == f'{{"Authorization": "{word} {MASK}"}}'


@contextmanager
def _captured_stderr() -> Iterator[io.StringIO]:
    captured, before = io.StringIO(), sys.stderr
    sys.stderr = captured
    try:
        yield captured
    finally:
        sys.stderr = before


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_configured_logging_never_writes_the_secret(fmt: str) -> None:
    secret = "tok-Zq81s3cr3t"
    configure_logging(fmt, secrets=[secret])
    try:
        log = structlog.get_logger("test")
        with _captured_stderr() as captured:
            log.info("called", header=f"Bearer {secret}", nested={"k": [secret]})
            log.warning(f"token {secret} refused", dsn="http://u:pw9pw9pw9@h:8123/")
            try:
                raise RuntimeError(f"bad token {secret}")
            except RuntimeError:
                log.exception("failed", args=(secret,))
        written = captured.getvalue()
    finally:
        structlog.reset_defaults()
    assert written.count("\n") >= 3
    assert secret not in written
    assert "pw9pw9pw9" not in written
    assert "bad token" in written
    assert "RuntimeError" in written
    if fmt == "json":
        for line in written.splitlines():
            json.loads(line)
