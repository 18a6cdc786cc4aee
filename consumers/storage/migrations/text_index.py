"""Migrations 105-107: what a word of a transcript is, for the text index and for search.

``splitByNonAlpha`` splits only at ASCII non-alphanumerics: every byte from 0x80 up is part of
a word, so a word in curly quotes (U+201C, U+201D), a "don't" written with U+2019, or two words
joined by a non-breaking space were one word each, and a search for the word missed what
speech-to-text engines commonly write. The index's preprocessor now turns Unicode punctuation,
symbols, spaces and format characters (zero-width spaces among them) into spaces before the
split; the engine applies the same preprocessor to a text wherever it evaluates
``hasAllTokens`` on it, with or without the index, and ``queries.search`` splits a query at
the same characters.
"""

from __future__ import annotations

from consumers.storage.migrations.migration import Migration

WORD_SEPARATORS = r"\p{P}\p{S}\p{Z}\p{Cc}\p{Cf}" + "\ufe00-\ufe0f\U000e0100-\U000e01ef"
"""What ends a word besides ASCII non-alphanumerics, as the body of a character class that RE2
(the engine) and ``regex`` (Python) read alike: Unicode's punctuation, symbols, spaces,
controls and format characters, and the variation selectors, marks that would otherwise make a
word of the emoji presentation selector after a symbol (a thumbs-up written with it or without
would differ). Characters assigned after the engine's Unicode tables (version 16 on: 1 003 of
them, new scripts' punctuation and new symbols) end a word in Python only, so a word glued to
one is not found; the tests check every character Python's own tables know."""

_PREPROCESSOR = (
    f"lowerUTF8(if(isValidASCII(text), text, replaceRegexpAll(text, '[{WORD_SEPARATORS}]', ' ')))"
).replace("\\", "\\\\")
"""The regular expression costs 1-4 microseconds a text (14 ms more for a search of the recent
quarter hour's 3 400 texts at 10M turns), paid only by texts with a character beyond ASCII."""

TEXT_INDEX: tuple[Migration, ...] = (
    Migration(
        105,
        "transcripts_text_index_dropped",
        "ALTER TABLE transcripts_generations DROP INDEX IF EXISTS words_of_text",
    ),
    Migration(
        106,
        "transcripts_text_index_split_at_unicode",
        "ALTER TABLE transcripts_generations ADD INDEX IF NOT EXISTS words_of_text text "
        f"TYPE text(tokenizer = splitByNonAlpha, preprocessor = {_PREPROCESSOR})",
    ),
    Migration(
        107,
        "transcripts_text_index_split_at_unicode_so_far",
        "ALTER TABLE transcripts_generations MATERIALIZE INDEX words_of_text",
    ),
)
