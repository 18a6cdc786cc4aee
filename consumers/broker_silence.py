"""Whether the broker answers a projector, logged once each way (``kafka_unreachable``, then
``kafka_reachable``) so that an outage shows in the log as well as in the lag.

Two things tell it: fetches, and a batch's commit. While a commit waits, the pipeline waits
with it and no fetch is made, so an outage that began during a commit went unlogged when
fetches alone told. (Dead letters are sent a record at a time: thousands of them take longer
than ``BLIND_AFTER_S`` from a broker that answers.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

import structlog
from aiokafka import AIOKafkaConsumer

from consumers.metrics import BLIND_AFTER_S

log = structlog.get_logger(__name__)

T = TypeVar("T")


class BrokerSilence:
    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.heard_s: float | None = None
        """When the broker last answered (wall clock): a fetch for every partition fetched, or
        a commit."""
        self._since: float | None = None
        """Since when the broker has not answered (or a commit has waited), once logged."""

    def started(self) -> None:
        self.heard_s = time.time()

    def fetched(self, consumer: AIOKafkaConsumer, fetched_any: bool) -> float | None:
        """When the broker last answered a fetch for every partition being fetched (paused
        ones are not).

        Records in hand count as an answer: aiokafka does not fetch a partition again while
        records it fetched wait to be taken, so a projector slow to write would otherwise look
        cut off from a broker that answers."""
        fetching = set(consumer.assignment()) - consumer.paused()
        polls = [consumer.last_poll_timestamp(tp) for tp in fetching]
        if fetched_any or not fetching:  # or nothing assigned, or all paused
            self.heard_s = time.time()
        elif None not in polls:
            self.heard_s = max(self.heard_s or 0.0, min(polls) / 1000)
        if self.heard_s is None:
            return None
        silent_s = time.time() - self.heard_s
        if silent_s >= BLIND_AFTER_S:
            self._silent(
                self.heard_s, "no fetch answered; projecting resumes when the broker is back"
            )
        else:
            self._answered()
        return self.heard_s

    async def waiting(self, call: Awaitable[T], what: str) -> T:
        """Await a call to Kafka, taking it for silence once it has waited ``BLIND_AFTER_S``;
        its answer tells that the broker is back."""
        began = time.time()
        timer = asyncio.get_running_loop().call_later(
            BLIND_AFTER_S,
            self._silent,
            began,
            f"{what} waits for the broker; projecting resumes when it answers",
        )
        try:
            answer = await call
        finally:
            timer.cancel()
        self.heard_s = time.time()
        self._answered()
        return answer

    def _answered(self) -> None:
        if self._since is not None:
            log.info(
                "kafka_reachable",
                generation=self.generation,
                silent_for_s=round(time.time() - self._since, 1),
            )
            self._since = None

    def _silent(self, since: float, detail: str) -> None:
        if self._since is None:
            self._since = since
            log.warning(
                "kafka_unreachable",
                generation=self.generation,
                silent_s=round(time.time() - since, 1),
                detail=detail,
            )
