"""Resolve the Kafka broker's jars from Maven Central into a cache folder outside the repo.

Kafka's POMs leave the logging backend out, and Kafka 4.3 still logs through SLF4J 1.7, so the
log4j2 binding for SLF4J 1.x is added by hand; without it the broker runs silently and a failed
start cannot be diagnosed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.25.2"

_ALTERNATIVE = "Alternatively run the stack in docker-compose.yml on a machine with Docker."

_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>transcript-store</groupId>
  <artifactId>dev-kafka</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""


class MissingToolError(RuntimeError):
    """A program the local broker needs is not installed; the message says what to install."""


def cache_dir() -> Path:
    explicit = os.environ.get("TSTORE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "transcript-store"


def require_tool(name: str, what: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingToolError(
            f"`{name}` was not found on PATH: {what}. "
            f"Install it (Debian/Ubuntu: `apt-get install {package}`). {_ALTERNATIVE}"
        )
    return path


def resolve_jars(cache: Path | None = None) -> Path:
    """Return the folder of broker jars, resolving them on first use.

    The folder appears atomically (built beside it, then renamed), so an interrupted resolution
    is simply redone and never leaves a half-filled cache that looks complete.
    """
    libs = (cache or cache_dir()) / f"kafka-{KAFKA_VERSION}" / "libs"
    if libs.is_dir():
        return libs
    mvn = require_tool("mvn", "Maven resolves the Kafka jars from Maven Central once", "maven")
    libs.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=libs.parent, prefix=".resolving-") as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(_POM)
        staged = Path(tmp) / "libs"
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staged}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not any(staged.glob("kafka_2.13-*.jar")):
            raise RuntimeError(
                f"Maven could not resolve Kafka {KAFKA_VERSION} (exit {result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )
        staged.rename(libs)
    return libs
