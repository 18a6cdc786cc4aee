"""Resolve the Kafka broker's jars from Maven Central into a cache folder outside the repo.

Kafka's POMs leave the logging backend out, and Kafka 4.3 still logs through SLF4J 1.7, so the
log4j2 binding for SLF4J 1.x is added by hand; without it the broker runs silently and a failed
start cannot be diagnosed.
"""

from __future__ import annotations

from pathlib import Path

from tstore import devjvm
from tstore.devjvm import MissingToolError, cache_dir

KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.25.2"

_ALTERNATIVE = " Alternatively run the stack in docker-compose.yml on a machine with Docker."

_ARTIFACTS = (
    f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
    f"org.apache.logging.log4j:log4j-api:{LOG4J_VERSION}",
    f"org.apache.logging.log4j:log4j-core:{LOG4J_VERSION}",
    f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
)

__all__ = ["KAFKA_VERSION", "MissingToolError", "require_tool", "resolve_jars"]


def require_tool(name: str, what: str, package: str) -> str:
    return devjvm.require_tool(name, what, package, _ALTERNATIVE)


def resolve_jars(cache: Path | None = None) -> Path:
    """Return the folder of broker jars, resolving them on first use."""
    return devjvm.resolve_jars(
        (cache or cache_dir()) / f"kafka-{KAFKA_VERSION}" / "libs",
        _ARTIFACTS,
        what=f"Kafka {KAFKA_VERSION}",
        expected="kafka_2.13-*.jar",
        alternative=_ALTERNATIVE,
    )
