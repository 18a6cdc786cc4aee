"""What the Java servers for development and tests (``devkafka``, ``devs3``) share beyond any
local server (``devserver``): jars that Maven resolves from Maven Central once, into the cache
outside the repo, run as one JVM.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tstore.devserver import LocalServer, Tool, resolve_once, run_tool
from tstore.devserver import MissingToolError as MissingToolError
from tstore.devserver import cache_dir as cache_dir
from tstore.devserver import free_port as free_port
from tstore.devserver import require_tool as require_tool


def _pom(name: str, artifacts: Sequence[str]) -> str:
    dependencies = "".join(
        "    <dependency>\n"
        f"      <groupId>{group}</groupId><artifactId>{artifact}</artifactId>\n"
        f"      <version>{version}</version>\n"
        "    </dependency>\n"
        for group, artifact, version in (coordinates.split(":") for coordinates in artifacts)
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>transcript-store</groupId>\n"
        f"  <artifactId>{name}</artifactId><version>1</version>\n"
        f"  <dependencies>\n{dependencies}  </dependencies>\n"
        "</project>\n"
    )


def resolve_jars(
    libs: Path, artifacts: Sequence[str], *, what: str, expected: str, alternative: str = ""
) -> Path:
    """Return ``libs``, filled first with ``artifacts`` (``group:artifact:version``) and all
    they need at run time, unless it already exists (``resolve_once``). ``expected`` is a glob
    of a jar that must be among them."""
    maven = Tool(
        "mvn", f"Maven resolves the {what} jars from Maven Central once", "maven", alternative
    )

    def fetch(mvn: str, staged: Path) -> None:
        pom = staged.parent / "pom.xml"
        pom.write_text(_pom(libs.parent.name, artifacts))
        run_tool(
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
            f"{what} with Maven",
        )
        if not any(staged.glob(expected)):
            raise RuntimeError(f"Maven resolved {what} without {expected}")

    return resolve_once(libs, maven, fetch, what=what)


class JvmServer(LocalServer):
    """A server JVM of this process (see ``LocalServer``)."""

    name = "the JVM"
