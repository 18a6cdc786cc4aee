"""Every session id keeps its chunks in a folder of its own, which every chunk store takes:
``..`` was a key the stores refused, which failed the call's audio and left it open."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from audio.stores import open_chunk_store
from producers.chunks import session_folder
from schemas.models import MAX_ID_CHARS

session_ids = st.one_of(
    st.sampled_from(
        [
            ".",
            "..",
            "...",
            "room/7",
            "a%2Fb",
            "a\\b",
            "../x",
            "x/..",
            " ",
            "a//b",
            "a" * 256,
            "é" * 256,
        ]
    ),
    st.text(min_size=1, max_size=MAX_ID_CHARS),
)


@given(session_ids)
def test_a_session_s_chunks_lie_in_one_folder_named_by_its_id(session_id: str) -> None:
    with tempfile.TemporaryDirectory() as root:
        stored = open_chunk_store(root).put(f"{session_folder(session_id)}/user-000000.wav", b"")
        (written,) = [p for p in Path(root).rglob("*") if p.is_file()]
        assert written.relative_to(root).parts == (session_folder(session_id), "user-000000.wav")
        assert stored.byte_size == 0


@given(session_ids, session_ids)
def test_two_sessions_never_share_a_folder(first: str, second: str) -> None:
    assert (session_folder(first) == session_folder(second)) == (first == second)
