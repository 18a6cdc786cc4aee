"""Long differential fuzzing of the two decoders with atheris (coverage-guided).

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python -m tests.fuzz.decoders tests/fuzz/corpus -max_total_time=600

Each input is read as up to eight edits of fixed valid events (``messages_from``), decoded
by both readers as one batch; any disagreement stops the run and atheris writes the input as
``crash-*``. Such inputs go into ``tests/fuzz/corpus``, which the suite replays
(``tests/unit/test_fuzz_corpus.py``), as does every input atheris kept for new coverage.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from uuid import UUID

from schemas.models import Event
from tests.decoders import disagreements
from tests.events import chunk, turn_pair
from tests.frames import CODEC

_T0 = datetime(2026, 12, 2, tzinfo=UTC)
_EVENTS: tuple[Event, ...] = (*turn_pair(), chunk())
BASES = [
    CODEC.encode(event.model_copy(update={"event_id": UUID(int=n), "occurred_at": _T0}))
    for n, event in enumerate(_EVENTS)
]
_MAX_MESSAGES = 8
_EDIT = 4
"""Bytes that say how to edit a base: which base and mode, offset (2 bytes), edit length."""


def messages_from(data: bytes) -> list[bytes]:
    """Fuzz input as a batch: per message, a base event, an offset in it and bytes that are
    written over it, inserted into it, or made the whole body."""
    messages: list[bytes] = []
    at = 0
    while at + _EDIT <= len(data) and len(messages) < _MAX_MESSAGES:
        choice, low, high, size = data[at : at + _EDIT]
        edit = data[at + _EDIT : at + _EDIT + size % 32]
        at += _EDIT + len(edit)
        base = BASES[choice % len(BASES)]
        offset = (low | high << 8) % (len(base) + 1)
        mode = choice // len(BASES) % 3
        if mode == 0:
            messages.append(base[:offset] + edit + base[offset + len(edit) :])
        elif mode == 1:
            messages.append(base[:offset] + edit + base[offset:])
        else:
            messages.append(base[:10] + edit)
    return messages


def check(data: bytes) -> None:
    found = disagreements(messages_from(data))
    if found:
        raise AssertionError("\n".join(found))


def main() -> None:
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
