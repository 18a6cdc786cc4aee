"""The one place the bot side's Kafka producer is configured.

``acks=all`` with idempotence means an acknowledged event is on the broker once per partition,
in the order sent, even when the client retries internally.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer


def kafka_producer(
    bootstrap: str,
    *,
    compression: str | None = "zstd",
    linger_ms: int = 5,
    request_timeout_ms: int = 30_000,
    max_request_size: int = 1024 * 1024,
) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type=compression,
        linger_ms=linger_ms,
        request_timeout_ms=request_timeout_ms,
        max_request_size=max_request_size,
    )
