"""The standard library's lines (aiokafka's) as the store's processes print them."""

from __future__ import annotations

import logging

import pytest

from tstore.logging import configure_logging


def test_a_line_aiokafka_repeats_is_printed_once_per_30_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json")
    fetcher = logging.getLogger("aiokafka.consumer.fetcher")
    for _ in range(80):
        fetcher.error("Failed fetch messages from %s: %s", 1, "NodeNotReadyError")
    fetcher.error("Unexpected error in fetcher routine")
    logging.getLogger("uvicorn.error").warning("not aiokafka")
    logging.getLogger("uvicorn.error").warning("not aiokafka")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4, lines
    assert "Failed fetch messages from 1: NodeNotReadyError" in lines[0]
