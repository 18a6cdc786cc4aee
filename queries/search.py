"""Full-text search over transcripts: words and quoted phrases, in any case, newest first.

A turn matches when its text holds every word (split at ASCII non-alphanumerics and at Unicode
punctuation, symbols and spaces, lower-cased, as the table's text index ``words_of_text``
splits it) and every phrase: the phrase's words in order, in any case, whole words, with only
separators between them (any run of them, whatever the phrase had: speech-to-text punctuates
as it likes, so ``"monday it should"`` finds ``Monday? It should``). The latest minutes are
searched by reading their texts, older turns through the text index (see ``_RECENT``). Only a
turn's latest version counts: a hit on a version that a later one replaced (a corrected transcript)
is dropped, and duplicates of one version are one hit.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import regex

from consumers.storage.migrations import WORD_SEPARATORS
from queries.errors import BadQueryError
from queries.models import SearchHit, SearchPage, Span
from queries.paging import (
    EARLIEST,
    LATEST,
    as_utc,
    decode_cursor,
    encode_cursor,
    fingerprint,
    page_size,
    store_range,
)
from queries.reader import Reader
from queries.turns import BY_SESSION_SETTINGS
from schemas import Role

MAX_QUERY_CHARS = 500
MAX_TERMS = 32
MAX_PHRASES = 8
"""Distinct phrases a query may hold: each is two query parameters and a regular expression
matched against every candidate row's text."""
_SEPARATORS = rf"\x00-/:-@\[-`{{-\x7f{WORD_SEPARATORS}"
"""What ends a word, as the body of a character class RE2 and ``regex`` read alike: the index's
preprocessor blanks ``WORD_SEPARATORS``, and ``splitByNonAlpha`` splits at the ASCII
characters that are not letters or digits."""
_TOKEN = regex.compile(f"[^{_SEPARATORS}]+")
"""What the index keeps as one token."""
_PHRASE = re.compile(r'"([^"]*)"')

_HITS = """
SELECT session_id, turn_id, started_at, version, bot_id, toString(role), text
FROM transcripts_generations
WHERE generation = {generation:UInt32}
    AND {recent}
    AND hasAllTokens(text, {tokens:Array(String)})
    AND {phrases}
    AND started_at <= {after_at:DateTime64(6, 'UTC')}
    AND (started_at, session_id, turn_id)
        < ({after_at:DateTime64(6, 'UTC')}, {after_sid:String}, {after_tid:String})
    AND {filters}
ORDER BY started_at DESC, session_id DESC, turn_id DESC, version DESC
LIMIT {batch:UInt32}"""
"""The newest matching versions. Versions of one turn come out side by side; ``_current``
keeps the latest (``LIMIT 1 BY`` here would make the engine sort every match instead of
keeping the newest few). Through the text index, the engine reads the text of the few kept
only."""
_RECENT = (
    "started_at >= {recent_from:DateTime64(6, 'UTC')}",
    "SETTINGS preferred_optimize_projection_name = 'turns_by_bot_and_time', "
    "query_plan_direct_read_from_text_index = 0",
)
"""Where the last ``RECENT`` before the newest turn asked for are searched, and how: every
text of that range is read from the projection ordered by bot and time. A common word fills a
page from those few thousand turns, where the text index, which knows nothing of time, would
have every one of its million matches sorted (the engine prefers the index whenever it can
use it, hence the settings). Older turns go through the index, which finds a rare word
fastest; a search for one pays for reading the recent range first."""
RECENT = timedelta(minutes=15)
_NEWEST = """
SELECT max(started_at) FROM transcripts_newest WHERE generation = {generation:UInt32}
HAVING count() > 0"""
_PHRASE_MATCH = (
    "if(isValidASCII(text), match(text, {ascii_phrase_%d:String}), match(text, {phrase_%d:String}))"
)
"""One phrase's ``phrase_pattern``, on the texts that hold all its words (``hasAllTokens``).
The separators' Unicode classes make the engine's regular expression slow (30-35 ms more a page
for a phrase of two words that 42 000 of 420 000 texts hold, every text with a character beyond
ASCII; 1-5 ms when the texts are ASCII); an ASCII text has only ASCII separators, so it is
checked with a short pattern."""
_FILTERS = {
    "bot_id": "bot_id = {bot_id:String}",
    "role": "role = {role:String}",
    "since": "started_at >= {since:DateTime64(6, 'UTC')}",
    "until": "started_at < {until:DateTime64(6, 'UTC')}",
}
_LATEST = (
    """
SELECT session_id, turn_id, max(version)
FROM transcripts_generations
WHERE generation = {generation:UInt32} AND session_id IN {ids:Array(String)}
GROUP BY session_id, turn_id
"""
    + BY_SESSION_SETTINGS
)
_END = (LATEST, "\uffff", "\uffff")


def phrase_pattern(phrase: str, *, ascii_text: bool = False) -> str:
    """A regular expression, in the dialect RE2 (the engine's ``match``) and ``regex`` share,
    that finds ``phrase``'s words in a text: in order, in any case, each a whole word, and any
    run of separators between two. The ends are a separator or the text's edge (RE2 has no
    lookaround: the separators at the ends are part of the match). A word holds no ASCII
    punctuation, so nothing in it is special to either dialect. With ``ascii_text``, for a text
    of ASCII characters only, where the separators are the characters other than letters and
    digits: the same matches there."""
    separator = "[^0-9A-Za-z]" if ascii_text else f"[{_SEPARATORS}]"
    words = f"{separator}+".join(_TOKEN.findall(phrase))
    return f"(?i)(?:^|{separator}){words}(?:{separator}|$)"


@functools.lru_cache(maxsize=256)
def _phrase_in_text(phrase: str) -> regex.Pattern[str]:
    """``phrase_pattern`` for ``regex``, matching the words only: the ends are lookarounds
    (preceded and followed by no character of a word)."""
    words = f"[{_SEPARATORS}]+".join(_TOKEN.findall(phrase))
    return regex.compile(f"(?i)(?<![^{_SEPARATORS}]){words}(?![^{_SEPARATORS}])")


@dataclass(frozen=True)
class Terms:
    """A query split into the words the index must hold, the phrases the text must hold (as
    written: ``phrase_pattern`` says what one matches), and the words marked on their own in
    a hit: those outside the phrases (a phrase's words are marked where they make it up, not
    wherever they stand alone)."""

    tokens: tuple[str, ...]
    phrases: tuple[str, ...]
    words: tuple[str, ...]

    @classmethod
    def parse(cls, q: str) -> Terms:
        if len(q) > MAX_QUERY_CHARS:
            raise BadQueryError("q", f"at most {MAX_QUERY_CHARS} characters")
        phrases: dict[tuple[str, ...], str] = {}  # one per word sequence, in any case: as matched
        alone = _TOKEN.findall(_PHRASE.sub(" ", q))
        for phrase in _PHRASE.findall(q):
            words = tuple(w.lower() for w in _TOKEN.findall(phrase))
            if len(words) > 1:
                phrases.setdefault(words, phrase.strip())
            else:
                alone += words
        tokens = tuple(dict.fromkeys(t.lower() for t in _TOKEN.findall(q)))
        if not tokens:
            raise BadQueryError("q", "give at least one word (letters or digits)")
        if len(tokens) > MAX_TERMS:
            raise BadQueryError("q", f"at most {MAX_TERMS} words")
        if len(phrases) > MAX_PHRASES:
            raise BadQueryError("q", f"at most {MAX_PHRASES} different quoted phrases")
        return cls(tokens, tuple(phrases.values()), tuple(dict.fromkeys(w.lower() for w in alone)))

    @property
    def meaning(self) -> tuple[list[str], list[list[str]]]:
        """What the query finds, whatever the case, order and separators it was written with:
        its words, and each phrase's words in order (a cursor serves any spelling of it)."""
        phrases = [[w.lower() for w in _TOKEN.findall(p)] for p in self.phrases]
        return sorted(self.tokens), sorted(phrases)

    def spans(self, text: str) -> list[Span]:
        """Where the words and phrases are in ``text``, merged where they overlap."""
        found = [
            (m.start(), m.end()) for m in _TOKEN.finditer(text) if m.group().lower() in self.words
        ]
        for phrase in self.phrases:
            found += [
                (m.start(), m.end())
                for m in _phrase_in_text(phrase).finditer(text, overlapped=True)
            ]
        merged: list[list[int]] = []
        for start, end in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [Span(start=s, end=e) for s, e in merged]


def marked(text: str, spans: list[Span]) -> str:
    """The text, HTML-escaped, with each span inside ``<mark>``: safe to show as HTML."""
    out, at = [], 0
    for span in spans:
        out += [
            html.escape(text[at : span.start]),
            "<mark>",
            html.escape(text[span.start : span.end]),
        ]
        out.append("</mark>")
        at = span.end
    return "".join([*out, html.escape(text[at:])])


def search(
    reader: Reader,
    q: str,
    *,
    bot_id: str | None = None,
    role: Role | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> SearchPage:
    terms = Terms.parse(q)
    limit = page_size(limit)
    since, until = store_range(since, until)
    chosen = {  # an empty bot filters nothing, as in ``queries.paging.of_bot``
        k: v
        for k, v in {"bot_id": bot_id, "role": role, "since": since, "until": until}.items()
        if v
    }
    query = fingerprint("search", {**chosen, "q": terms.meaning})
    after = decode_cursor(query, cursor, (datetime, str, str)) if cursor else _END
    phrases = {
        f"{ascii_}phrase_{n}": phrase_pattern(p, ascii_text=bool(ascii_))
        for n, p in enumerate(terms.phrases)
        for ascii_ in ("", "ascii_")
    }
    sql = _HITS.replace("{filters}", " AND ".join(_FILTERS[k] for k in chosen) or "1").replace(
        "{phrases}", " AND ".join(_PHRASE_MATCH % (n, n) for n in range(len(terms.phrases))) or "1"
    )
    recent_sql = f"{sql.replace('{recent}', _RECENT[0])}\n{_RECENT[1]}"
    older_sql = sql.replace("{recent}", "1")
    generation = reader.generation("transcripts")
    recent_from = _recent_from(reader, generation, min(after[0], until or LATEST), since)
    hits: list[SearchHit] = []
    batch = 2 * (limit + 1)  # room for the duplicates of a turn not yet merged away
    while len(hits) <= limit:
        recent = after[0] > recent_from
        rows = reader.rows(
            recent_sql if recent else older_sql,
            generation=generation,
            recent_from=recent_from,
            tokens=list(terms.tokens),
            **phrases,
            after_at=after[0],
            after_sid=after[1],
            after_tid=after[2],
            batch=batch,
            **chosen,
        )
        hits += _current(reader, generation, rows, terms)
        if len(rows) == batch:
            last = rows[-1]
            after = (as_utc(last[2]), str(last[0]), str(last[1]))
            batch = min(batch * 2, 2_000)
        elif recent:
            after = (recent_from, "", "")  # the recent turns are done: on to the older ones
        else:
            break
    page = hits[:limit]
    more = len(hits) > limit
    return SearchPage(
        items=page,
        next_cursor=(
            encode_cursor(query, page[-1].started_at, page[-1].session_id, page[-1].turn_id)
            if more
            else None
        ),
    )


def _recent_from(
    reader: Reader, generation: int, newest: datetime, since: datetime | None
) -> datetime:
    """Where the recent turns searched by time begin: ``RECENT`` before ``newest``, or before
    the newest turn stored when ``newest`` bounds nothing. That is read again at most once
    per ``Reader.held``'s time: one a moment old only widens the recent range a little, with the
    same answer (the statement took 2.4-4 ms of a 57 ms search at 10M turns)."""
    if newest >= LATEST:
        stored = reader.held(
            ("newest turn", generation), lambda: reader.rows(_NEWEST, generation=generation)
        )
        newest = as_utc(stored[0][0]) if stored else EARLIEST + RECENT
    return max(newest - RECENT, since or EARLIEST)


def _current(reader: Reader, generation: int, rows: Any, terms: Terms) -> list[SearchHit]:
    """The hits whose version is their turn's latest."""
    if not rows:
        return []
    latest = {
        (str(s), str(t)): int(v)
        for s, t, v in reader.rows(
            _LATEST, generation=generation, ids=sorted({str(r[0]) for r in rows})
        )
    }
    hits, seen = [], set()
    for session_id, turn_id, started_at, version, bot_id, role, text in rows:
        if latest.get((session_id, turn_id)) != version or (session_id, turn_id) in seen:
            continue
        seen.add((session_id, turn_id))
        spans = terms.spans(text)
        hits.append(
            SearchHit(
                session_id=session_id,
                turn_id=turn_id,
                bot_id=bot_id,
                role=role,
                started_at=as_utc(started_at),
                text=text,
                matches=spans,
                marked=marked(text, spans),
            )
        )
    return hits
