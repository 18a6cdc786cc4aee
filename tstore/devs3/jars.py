"""Resolve s3proxy's jars from Maven Central into the cache folder the Kafka jars share."""

from __future__ import annotations

from pathlib import Path

from tstore import devjvm

S3PROXY_VERSION = "2.6.0"


def resolve_jars(cache: Path | None = None) -> Path:
    """Return the folder of s3proxy's jars (about 130, 43 MB), resolving them on first use."""
    return devjvm.resolve_jars(
        (cache or devjvm.cache_dir()) / f"s3proxy-{S3PROXY_VERSION}" / "libs",
        [f"org.gaul:s3proxy:{S3PROXY_VERSION}"],
        what=f"s3proxy {S3PROXY_VERSION}",
        expected="s3proxy-*.jar",
    )
