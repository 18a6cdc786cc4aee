"""Gathering a batch: it closes when it holds ``max_batch`` records or ``max_wait_ms`` passed."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer

from consumers.steps import Records


async def gather(consumer: AIOKafkaConsumer, *, max_batch: int, max_wait_ms: int) -> Records:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait_ms / 1000
    records: Records = {}
    count = 0
    while count < max_batch and (left_s := deadline - loop.time()) > 0:
        fetched = await consumer.getmany(
            timeout_ms=max(1, int(left_s * 1000)), max_records=max_batch - count
        )
        for tp, batch in fetched.items():
            records.setdefault(tp, []).extend(batch)
            count += len(batch)
    return records
