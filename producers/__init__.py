"""The bot side: publishes a conversation's events to Kafka.

``publisher`` is the Kafka edge (durable, ordered per session).
"""

from producers.publisher import EventPublisher

__all__ = ["EventPublisher"]
