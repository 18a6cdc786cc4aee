"""Topics deleted and made again: their offsets start again from 0, as behind a new broker."""

from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient

from consumers.topics_admin import ensure_topics
from schemas import Topics

LISTED_WITHIN_S = 60.0
"""A deletion or a creation seen in the broker's topic list, on two busy cores. A topic made
while the broker still deletes it is answered "already exists" and is gone once the deletion
ends: a test that waited 10 s for the deletion went on without its topics in CI."""


async def made_again(bootstrap: str, topics: Topics, partitions: int) -> None:
    """Delete the topics and create them again, once the broker has let them go."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.delete_topics(list(topics.all))
        refused = [(name, code) for name, code in response.topic_error_codes if code]
        assert not refused, f"the broker refused to delete (topic, error code): {refused}"
        await _until_listed(admin, topics, set())
        for _ in range(100):
            try:
                await ensure_topics(bootstrap, topics, partitions=partitions)
                break
            except RuntimeError:  # still being deleted
                await asyncio.sleep(0.1)
        else:
            await ensure_topics(bootstrap, topics, partitions=partitions)  # raises what fails
        await _until_listed(admin, topics, set(topics.all))
    finally:
        await admin.close()


async def _until_listed(admin: AIOKafkaAdminClient, topics: Topics, expected: set[str]) -> None:
    deadline = time.monotonic() + LISTED_WITHIN_S
    while (listed := set(topics.all) & set(await admin.list_topics())) != expected:
        assert time.monotonic() < deadline, (
            f"{LISTED_WITHIN_S:.0f} s on, the broker lists {sorted(listed)} of {sorted(topics.all)}"
        )
        await asyncio.sleep(0.1)
