"""Creating the event topics, idempotently, to keep their events for ever.

The projector side owns topic creation: bots usually run without admin rights on the cluster,
and a topic created by a producer's auto-create would get the broker's default partitioning.
Kafka is the store's source of truth: a topic that loses events (the broker's default deletes
them after 7 days; a size limit or compaction loses them too) leaves a rebuild without those
calls, so topics are made to keep every event, and topics found losing them are named.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from producers.kafka import PLAINTEXT, KafkaSecurity, started
from schemas import Topics

log = structlog.get_logger(__name__)

_TOPIC_ALREADY_EXISTS = 36

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Above Kafka's 1 MB default: an oversized record from a misbehaving producer must still reach
the projector, so that it lands in the dead-letter topic with a reason instead of vanishing."""
KEEP_EVENTS = {
    "retention.ms": "-1",
    "retention.bytes": "-1",
    "cleanup.policy": "delete",
    "message.timestamp.type": "LogAppendTime",
}
"""Topic settings that keep every event: no time or size limit, no compaction (events are
keyed by session, so a compacted topic keeps a session's last event only), and records dated
by the broker. Dated by the producer (``CreateTime``), a record from a bot whose clock runs
ahead of the broker's by more than ``message.timestamp.after.max.ms`` (an hour by default
since Kafka 4) is refused for good, so every event of that bot is lost; and the lag and a
rebuild's ``--until``, which read records' dates, would go by each bot's clock."""


async def ensure_topics(
    bootstrap: str,
    topics: Topics,
    *,
    partitions: int,
    replication: int = 1,
    security: KafkaSecurity = PLAINTEXT,
) -> dict[str, list[str]]:
    """Create the topics that are missing, keeping every event (``KEEP_EVENTS``); returns the
    topics that were there already and lose events, with how (also logged as a warning that
    says how to keep them): changing a topic's settings is left to whoever runs the
    cluster."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
    await started(admin, bootstrap, security)
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name,
                    partitions,
                    replication,
                    topic_configs={"max.message.bytes": str(MAX_MESSAGE_BYTES), **KEEP_EVENTS},
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
        losing = await _losing(admin, existing) if existing else {}
    finally:
        await admin.close()
    for name, how in losing.items():
        log.warning("topic_loses_events", topic=name, advice=advice(name, how, bootstrap))
    return losing


def event_partitions(consumer: AIOKafkaConsumer, topics: Topics) -> list[TopicPartition] | None:
    """Every partition of the event topics, as ``consumer``'s metadata knows them, in order;
    None while it does not know one of the topics."""
    known = [consumer.partitions_for_topic(topic) for topic in topics.events]
    if any(not partitions for partitions in known):
        return None
    return [
        TopicPartition(topic, p)
        for topic, partitions in zip(topics.events, known, strict=True)
        for p in sorted(partitions)
    ]


def advice(topic: str, how: list[str], bootstrap: str) -> str:
    """What a topic that loses events costs, and the command that keeps them."""
    return (
        f"{topic} {' and '.join(how)}: the store, and any rebuild, would miss those events; "
        "keep every event with "
        f"kafka-configs.sh --bootstrap-server {bootstrap} --alter --entity-type topics "
        f"--entity-name {topic} --add-config "
        + ",".join(f"{name}={value}" for name, value in KEEP_EVENTS.items())
    )


async def _losing(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, list[str]]:
    responses = await admin.describe_configs(
        [
            ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(KEEP_EVENTS))
            for name in names
        ]
    )
    losing: dict[str, list[str]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            values = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
            how = [
                h for name in KEEP_EVENTS if name in values and (h := _loses(name, values[name]))
            ]
            if how:
                losing[resource["resource_name"]] = how
    return losing


def _loses(setting: str, value: str) -> str | None:
    """How a topic with ``setting`` at ``value`` loses events, if it does."""
    if setting == "retention.ms" and int(value) >= 0:
        kept = timedelta(milliseconds=int(value))
        span = f"{kept.days} days" if kept % timedelta(days=1) == timedelta(0) else str(kept)
        return f"deletes events older than {span} (retention.ms={value})"
    if setting == "retention.bytes" and int(value) >= 0:
        size = f"{int(value):,} bytes a partition"
        return f"deletes its oldest events past {size} (retention.bytes={value})"
    if setting == "cleanup.policy" and "compact" in value:
        return f"keeps only each session's newest event (cleanup.policy={value})"
    if setting == "message.timestamp.type" and value != "LogAppendTime":
        return (
            "refuses the events of a bot whose clock runs ahead of the broker's "
            f"(message.timestamp.type={value})"
        )
    return None
