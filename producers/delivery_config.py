"""What the delivery thread is told: ``DeliveryConfig``.

The configuration is checked when it is made: a value the thread cannot work with (a batch of
no events, no pause between failed attempts) used to be taken as given and showed only as a
thread that never delivered, or that spun and flooded the log while Kafka was down.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPRESSIONS = (None, "gzip", "snappy", "lz4", "zstd")
"""What aiokafka's producer can compress with (``compression_type``)."""


@dataclass(frozen=True)
class DeliveryConfig:
    memory_events: int = 10_000
    """Bound of the in-memory queue; beyond it events go to the spool."""
    batch_events: int = 1_000
    retry_pause_s: float = 0.5
    """First pause after a failure; doubles while Kafka stays down, up to ``max_retry_pause_s``."""
    max_retry_pause_s: float = 5.0
    request_timeout_ms: int = 30_000
    compression: str | None = "zstd"
    linger_ms: int = 5
    durability_window_ms: int = 200
    """A killed process loses no event accepted longer ago than this (see the README)."""
    spool_retry_s: float = 30.0
    """How often a spool that could not be used is tried again (``Spool.reopen``)."""

    def __post_init__(self) -> None:
        _at_least("memory_events", self.memory_events, 1, "the queue must hold an event")
        _at_least("batch_events", self.batch_events, 1, "a batch of none never delivers")
        _at_least("retry_pause_s", self.retry_pause_s, 0.01, "no pause floods a broker and the log")
        _at_least(
            "max_retry_pause_s", self.max_retry_pause_s, self.retry_pause_s, "the retry_pause_s"
        )
        _at_least("request_timeout_ms", self.request_timeout_ms, 100, "Kafka's own floor is near")
        _at_least("linger_ms", self.linger_ms, 0, "a wait cannot be negative")
        _at_least("durability_window_ms", self.durability_window_ms, 1, "the journal needs time")
        _at_least("spool_retry_s", self.spool_retry_s, 0.01, "each try lists the spool's folder")
        if self.compression not in COMPRESSIONS:
            raise ValueError(
                f"DeliveryConfig.compression: {self.compression!r} is not one of "
                f"{', '.join(repr(c) for c in COMPRESSIONS)}"
            )


def _at_least(name: str, value: float, least: float, why: str) -> None:
    """A ValueError naming the field, its allowed range and why, unless ``value`` is a number
    (not a bool, which Python counts as one; a whole one for the fields counted in events and
    milliseconds) of at least ``least``."""
    counted = not name.endswith("_s")
    kinds: tuple[type, ...] = (int,) if counted else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value >= least:
        whole = "a whole number " if counted else ""
        raise ValueError(f"DeliveryConfig.{name}: {value!r} is not {whole}>= {least:g} ({why})")
