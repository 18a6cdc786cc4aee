"""Migrations 105-107 and 117-119: what a word of a transcript is, for the text index and for
search.

``splitByNonAlpha`` splits only at ASCII non-alphanumerics: every byte from 0x80 up is part of
a word, so a word in curly quotes (U+201C, U+201D), a "don't" written with U+2019, or two words
joined by a non-breaking space were one word each, and a search for the word missed what
speech-to-text engines commonly write. The index's preprocessor turns Unicode punctuation,
symbols, spaces and format characters (zero-width spaces among them) into spaces before the
split; the engine applies the same preprocessor to a text wherever it evaluates
``hasAllTokens`` on it, with or without the index, and ``queries.search`` splits a query at
the same characters. 105-107 named them by their Unicode classes; 117-119 by the list written
out in ``word_separators``: the same characters, which the engine finds in a fifth of the time.
"""

from __future__ import annotations

from consumers.storage.migrations.migration import Migration
from consumers.storage.migrations.word_separators import WORD_SEPARATORS, written_out


def _index_made_again(
    first_version: int, names: tuple[str, str, str], preprocessor: str
) -> tuple[Migration, ...]:
    """The text index dropped, added with ``preprocessor``, and built for the rows so far."""
    dropped, added, built = names
    return (
        Migration(
            first_version,
            dropped,
            "ALTER TABLE transcripts_generations DROP INDEX IF EXISTS words_of_text",
        ),
        Migration(
            first_version + 1,
            added,
            "ALTER TABLE transcripts_generations ADD INDEX IF NOT EXISTS words_of_text text "
            f"TYPE text(tokenizer = splitByNonAlpha, preprocessor = {preprocessor})",
        ),
        Migration(
            first_version + 2,
            built,
            "ALTER TABLE transcripts_generations MATERIALIZE INDEX words_of_text",
        ),
    )


TEXT_INDEX = _index_made_again(
    105,
    (
        "transcripts_text_index_dropped",
        "transcripts_text_index_split_at_unicode",
        "transcripts_text_index_split_at_unicode_so_far",
    ),
    "lowerUTF8(if(isValidASCII(text), text, "
    f"replaceRegexpAll(text, '[{WORD_SEPARATORS}]', ' ')))".replace("\\", "\\\\"),
)
TEXT_INDEX_WRITTEN_OUT = _index_made_again(
    117,
    (
        "transcripts_text_index_dropped_for_separators_written_out",
        "transcripts_text_index_separators_written_out",
        "transcripts_text_index_separators_written_out_so_far",
    ),
    f"lowerUTF8(replaceRegexpAll(text, '[{written_out()}]', ' '))",
)
"""The preprocessor runs the regular expression on every text, ASCII or not: the engine
evaluates both branches of an ``if`` for an index (105-107 skipped ASCII texts only when a
query evaluated it), and a class of characters above ASCII costs an ASCII text little."""
