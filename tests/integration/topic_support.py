"""Topics deleted and made again: their offsets start again from 0, as behind a new broker."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient

from consumers.topics_admin import ensure_topics
from schemas import Topics


async def made_again(bootstrap: str, topics: Topics, partitions: int) -> None:
    """Delete the topics and create them again, once the broker has let them go."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(list(topics.all))
        for _ in range(100):
            if not set(topics.all) & set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    for _ in range(100):
        try:
            await ensure_topics(bootstrap, topics, partitions=partitions)
            return
        except RuntimeError:  # still being deleted
            await asyncio.sleep(0.1)
    await ensure_topics(bootstrap, topics, partitions=partitions)
