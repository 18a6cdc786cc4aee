"""A real Apache Kafka broker for tests, benchmarks and the demo, without Docker.

The jars come from Maven Central once (``jars``); ``broker`` runs them as one KRaft JVM.
"""

from tstore.devkafka.broker import DevKafka
from tstore.devkafka.jars import KAFKA_VERSION, MissingToolError, resolve_jars

__all__ = ["KAFKA_VERSION", "DevKafka", "MissingToolError", "resolve_jars"]
