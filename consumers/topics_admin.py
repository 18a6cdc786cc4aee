"""Creating the event topics, idempotently.

The projector side owns topic creation: bots usually run without admin rights on the cluster,
and a topic created by a producer's auto-create would get the broker's default partitioning.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from producers.kafka import PLAINTEXT, KafkaSecurity, started
from schemas import Topics

_TOPIC_ALREADY_EXISTS = 36

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Above Kafka's 1 MB default: an oversized record from a misbehaving producer must still reach
the projector, so that it lands in the dead-letter topic with a reason instead of vanishing."""


async def ensure_topics(
    bootstrap: str,
    topics: Topics,
    *,
    partitions: int,
    replication: int = 1,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
    await started(admin, bootstrap, security)
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name,
                    partitions,
                    replication,
                    topic_configs={"max.message.bytes": str(MAX_MESSAGE_BYTES)},
                )
                for name in topics.all
            ]
        )
    finally:
        await admin.close()
    failures = [
        f"{name}: error {code} {' '.join(str(d) for d in detail if d)}".strip()
        for name, code, *detail in response.topic_errors
        if code not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failures:
        raise RuntimeError(f"could not create topics: {'; '.join(failures)}")
