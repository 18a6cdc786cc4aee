"""A real S3 API server (s3proxy) for tests, benchmarks and development, without Docker.

The jars come from Maven Central once (``jars``); ``server`` runs them as one JVM whose
buckets are folders on disk.
"""

from tstore.devs3.jars import S3PROXY_VERSION, resolve_jars
from tstore.devs3.server import DevS3

__all__ = ["S3PROXY_VERSION", "DevS3", "resolve_jars"]
