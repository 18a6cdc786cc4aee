"""The bot side: publishes a conversation's events to Kafka without ever blocking the bot.

``producer.TranscriptProducer`` is what bots call; ``delivery`` moves events to Kafka in a
thread of its own, through ``spool`` when Kafka is down; ``publisher.EventPublisher`` awaits
each acknowledgement, for tools and tests.
"""

from producers.delivery import DeliveryConfig
from producers.kafka import KafkaSecurity
from producers.producer import ProducerStats, TranscriptProducer
from producers.publisher import EventPublisher

__all__ = [
    "DeliveryConfig",
    "EventPublisher",
    "KafkaSecurity",
    "ProducerStats",
    "TranscriptProducer",
]
