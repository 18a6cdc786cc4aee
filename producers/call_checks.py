"""What a bot's call is refused for at the call site, beyond the contract's own checks: counts
it resumes a session with, and a turn larger than Kafka will ever take. Refused later, on the
delivery thread, they would be lost after the call had returned."""

from __future__ import annotations

from collections.abc import Callable

from producers.frames import SpoolRecord
from producers.kafka import MAX_EVENT_BYTES
from producers.refusals import record_bytes
from schemas import TurnStopped
from schemas.models import MAX_ID_CHARS


def whole_numbers(name: str, *values: object) -> None:
    """A ValueError naming ``name`` unless each value is a whole number of at least 0 (a
    bool is none, though Python counts it as one), as the events' counts must be."""
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}: {value!r} is not a whole number >= 0")


def fits_kafka(event: TurnStopped, encode: Callable[[TurnStopped], SpoolRecord]) -> None:
    """A ValueError saying by how much a turn is over ``MAX_EVENT_BYTES``, if it is."""
    if _may_exceed(event) and (size := record_bytes(encode(event))) > MAX_EVENT_BYTES:
        raise ValueError(
            f"TurnStopped {event.turn_id!r} of session {event.session_id!r}: {size} bytes "
            f"encoded, over the {MAX_EVENT_BYTES} an event may take in Kafka: shorten its text "
            "or its words"
        )


def _may_exceed(event: TurnStopped) -> bool:
    """Whether the turn could encode to more than ``MAX_EVENT_BYTES``: the other events' fields
    are bounded well under it by the contract, a turn's text and words are not, but their
    characters take at most 4 bytes each, a word's times 16 and the length of its text 2 (of
    up to 256 characters; 24 a word counted), the rest a few kB. Only a turn this bound does
    not clear is encoded at the call (the bot's loop pays for it)."""
    words = event.words or ()
    if 4 * len(event.text) + (4 * MAX_ID_CHARS + 24) * len(words) + 8192 <= MAX_EVENT_BYTES:
        return False  # words of the longest text each: no turn of a live call comes near
    chars = len(event.text) + sum(len(w.text) for w in words)
    return 4 * chars + 24 * len(words) + 8192 > MAX_EVENT_BYTES
