"""The lag probe of a Kafka that does not answer fails and leaves no client open: a process
that does not project probes every 2 s, and each leaked consumer was logged as unclosed."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from consumers.lag import oldest_unprojected_age_s
from schemas import Topics


async def test_probing_an_unreachable_kafka_leaves_no_consumer_unclosed() -> None:
    reported: list[str] = []

    def report(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reported.append(str(context["message"]))

    asyncio.get_running_loop().set_exception_handler(report)
    with socket.socket() as bound, warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        bound.bind(("127.0.0.1", 0))  # never listened on: connections are refused
        try:
            await oldest_unprojected_age_s(f"127.0.0.1:{bound.getsockname()[1]}", Topics(), ["g"])
        except KafkaConnectionError:
            pass  # not kept: its traceback would keep the clients alive past the collection
        else:
            pytest.fail("a Kafka nobody listens for was measured")
        gc.collect()
    assert not reported
    assert not [str(w.message) for w in warned if issubclass(w.category, ResourceWarning)]
