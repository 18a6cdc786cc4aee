"""Deleting a consumer group, which aiokafka's admin client does not offer (0.14 has no
``delete_consumer_groups``). A discarded rebuild's group would otherwise stay on the broker with
its offsets, listed beside the live groups, until ``offsets.retention.minutes`` (7 days by
default) lets it go."""

from __future__ import annotations

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import GroupIdNotFound, NoError, for_code
from aiokafka.protocol.admin import DeleteGroupsRequest

from producers.kafka import PLAINTEXT, KafkaSecurity

GROUP_COORDINATOR = 0
"""``FindCoordinator``'s key type of a consumer group (1 is a transaction's)."""


async def delete_group(bootstrap: str, group: str, security: KafkaSecurity = PLAINTEXT) -> None:
    """Delete ``group`` and its committed offsets; a group that does not exist (it never
    committed) is already gone. A group with members is refused by the broker, and said so."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, **security.client_options())
    try:
        await client.bootstrap()
        coordinator = await client.coordinator_lookup(GROUP_COORDINATOR, group)
        response = await client.send(coordinator, DeleteGroupsRequest([group]))
    finally:
        await client.close()
    for _, code in response.results:
        error = for_code(code)
        if error not in (NoError, GroupIdNotFound):
            raise error(f"Kafka refused to delete the consumer group {group}: {error.description}")
