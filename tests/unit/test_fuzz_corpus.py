"""Every input the long fuzzing runs kept (``tests/fuzz``) still decodes alike on both paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.decoders import check, messages_from

CORPUS = sorted((Path(__file__).parents[1] / "fuzz" / "corpus").iterdir())


def test_the_corpus_is_kept() -> None:
    assert len(CORPUS) >= 10


@pytest.mark.parametrize("path", CORPUS, ids=[p.name[:12] for p in CORPUS])
def test_a_kept_input_decodes_alike_on_both_paths(path: Path) -> None:
    check(path.read_bytes())


def test_an_input_becomes_edits_of_valid_events() -> None:
    assert messages_from(b"") == []
    (same,) = messages_from(bytes([0, 0, 0, 0]))
    assert len(same) > 20
