"""Creating the event topics, idempotently, to keep their events for ever.

The projector side owns topic creation: bots usually run without admin rights on the cluster,
and a topic created by a producer's auto-create would get the broker's default partitioning.
Kafka is the store's source of truth: a topic that deletes its old events (the broker's
default is after 7 days) leaves a rebuild without the calls before that, so topics are made
without a time limit, and topics found with one are named.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from producers.kafka import PLAINTEXT, KafkaSecurity, started
from schemas import Topics

log = structlog.get_logger(__name__)

_TOPIC_ALREADY_EXISTS = 36

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Above Kafka's 1 MB default: an oversized record from a misbehaving producer must still reach
the projector, so that it lands in the dead-letter topic with a reason instead of vanishing."""
RETENTION = "retention.ms"


async def ensure_topics(
    bootstrap: str,
    topics: Topics,
    *,
    partitions: int,
    replication: int = 1,
    security: KafkaSecurity = PLAINTEXT,
) -> dict[str, timedelta]:
    """Create the topics that are missing, keeping their events for ever; returns the topics
    that were there already and delete events after a time, with that time (also logged as
    a warning that says how to keep them): changing a topic's settings is left to whoever
    runs the cluster."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
    await started(admin, bootstrap, security)
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name,
                    partitions,
                    replication,
                    topic_configs={"max.message.bytes": str(MAX_MESSAGE_BYTES), RETENTION: "-1"},
                )
                for name in topics.all
            ]
        )
        failures = [
            f"{name}: error {code} {' '.join(str(d) for d in detail if d)}".strip()
            for name, code, *detail in response.topic_errors
            if code not in (0, _TOPIC_ALREADY_EXISTS)
        ]
        if failures:
            raise RuntimeError(f"could not create topics: {'; '.join(failures)}")
        existing = [n for n, code, *_ in response.topic_errors if code == _TOPIC_ALREADY_EXISTS]
        forgetting = await _time_limited(admin, existing) if existing else {}
    finally:
        await admin.close()
    for name, kept in forgetting.items():
        log.warning("topic_deletes_events", topic=name, advice=forgets(name, kept, bootstrap))
    return forgetting


def forgets(topic: str, kept: timedelta, bootstrap: str) -> str:
    """What a topic that deletes its events costs, and the command that keeps them."""
    ms = kept // timedelta(milliseconds=1)
    span = f"{kept.days} days" if kept % timedelta(days=1) == timedelta(0) else str(kept)
    return (
        f"{topic} deletes events older than {span} ({RETENTION}={ms}): a rebuild would lose "
        f"the calls before that; keep them with kafka-configs.sh --bootstrap-server {bootstrap} "
        f"--alter --entity-type topics --entity-name {topic} --add-config {RETENTION}=-1"
    )


async def _time_limited(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, timedelta]:
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, {RETENTION: None}) for name in names]
    )
    limited = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            for entry in resource["config_entries"]:
                if entry["config_names"] == RETENTION and int(entry["config_value"]) >= 0:
                    limited[resource["resource_name"]] = timedelta(
                        milliseconds=int(entry["config_value"])
                    )
    return limited
