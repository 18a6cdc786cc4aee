"""One s3proxy JVM serving the S3 API on a free loopback port, its buckets folders on disk.

s3proxy answers as S3 does (signatures v2 and v4, range reads, 404 and 416 errors), so the
chunk stores are tested against a real S3 API server, not a mock. Its filesystem backend keeps
each bucket as a folder under the base directory, which is how ``create_bucket`` makes one.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from tstore.devs3.jars import resolve_jars
from tstore.devserver import ObjectServer, loopback_request, require_tool

_LOGBACK_CONFIG = Path(__file__).with_name("logback.xml")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
REGION = "us-east-1"
"""s3proxy takes any region in a signature; clients sign for this one."""


class DevS3(ObjectServer):
    """A local S3 API server with one identity; ``start`` after ``stop`` serves the same
    buckets on the same port.

    Without ``data_dir`` a temporary folder holds the buckets and is removed by ``close``.
    """

    name = "s3proxy"
    scheme = "s3"
    endpoint_variable = "AWS_ENDPOINT_URL"

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        heap: str = "256m",
        libs: Path | None = None,
    ) -> None:
        self._java = require_tool(
            "java", "the local S3 API server (s3proxy) is a JVM", "openjdk-17-jre-headless"
        )
        self._libs = libs or resolve_jars()
        super().__init__(data_dir, "tstore-s3-", port)
        self.identity = "tstore-dev"
        self.credential = secrets.token_hex(16)
        self._heap = heap

    @property
    def buckets_dir(self) -> Path:
        return self.data_dir / "buckets"

    def client_env(self) -> dict[str, str]:
        """The variables with which obstore (and the AWS SDKs and CLI) reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": self.identity,
            "AWS_SECRET_ACCESS_KEY": self.credential,
            "AWS_REGION": REGION,
        }

    def create_bucket(self, name: str) -> str:
        """A bucket is a folder under the base directory; returns ``name``."""
        if not _BUCKET_NAME.match(name) or ".." in name:
            raise ValueError(
                f"bucket name {name!r}: 3 to 63 lowercase letters, digits, dots or hyphens, "
                "starting and ending with a letter or digit"
            )
        (self.buckets_dir / name).mkdir(parents=True, exist_ok=True)
        return name

    def upload(self, bucket: str, key: str, data: bytes) -> None:
        """An object is a file in its bucket's folder, which s3proxy serves as it finds it."""
        path = self.buckets_dir / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def _properties(self) -> str:
        settings = {
            "s3proxy.endpoint": self.endpoint,
            "s3proxy.authorization": "aws-v2-or-v4",
            "s3proxy.identity": self.identity,
            "s3proxy.credential": self.credential,
            "jclouds.provider": "filesystem",
            "jclouds.filesystem.basedir": str(self.buckets_dir),
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _command(self) -> list[str]:
        self.buckets_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "s3proxy.properties"
        config.write_text(self._properties())
        config.chmod(0o600)
        return [
            self._java,
            f"-Xmx{self._heap}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Dlogback.configurationFile={_LOGBACK_CONFIG}",
            "-cp",
            f"{self._libs}/*",
            "org.gaul.s3proxy.Main",
            "--properties",
            str(config),
        ]

    def _answering(self) -> bool:
        """Any HTTP answer will do (an anonymous request gets 403): the server is serving."""
        return loopback_request(self.port, timeout=2) is not None
