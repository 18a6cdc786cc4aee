"""What the local servers for development and tests (``devkafka``, ``devs3``) share: Java
programs whose jars Maven resolves from Maven Central once, into a cache outside the repo, and
run as a JVM tied to the Python process that started it.

A JVM gets SIGKILL from the kernel if its parent dies (PR_SET_PDEATHSIG), so a test run that is
killed leaves no orphan server behind.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

_PR_SET_PDEATHSIG = 1


class MissingToolError(RuntimeError):
    """A program a local server needs is not installed; the message says what to install."""


def cache_dir() -> Path:
    explicit = os.environ.get("TSTORE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "transcript-store"


def require_tool(name: str, what: str, package: str, alternative: str = "") -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingToolError(
            f"`{name}` was not found on PATH: {what}. "
            f"Install it (Debian/Ubuntu: `apt-get install {package}`).{alternative}"
        )
    return path


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
    they need at run time, unless it already exists.

    The folder appears atomically (built beside it, then renamed), so an interrupted resolution
    is simply redone and never leaves a half-filled cache that looks complete. ``expected`` is a
    glob of a jar that must be among them.
    """
    if libs.is_dir():
        return libs
    mvn = require_tool(
        "mvn", f"Maven resolves the {what} jars from Maven Central once", "maven", alternative
    )
    libs.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=libs.parent, prefix=".resolving-") as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(_pom(libs.parent.name, artifacts))
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
        if result.returncode != 0 or not any(staged.glob(expected)):
            raise RuntimeError(
                f"Maven could not resolve {what} (exit {result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )
        staged.rename(libs)
    return libs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Looked up in the parent: the forked child must not dlopen, another thread may hold the lock.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def die_with_parent() -> None:
    """A ``preexec_fn``: the child is killed when the process that started it dies."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL if the process overruns ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class JvmServer:
    """A server JVM of this process, logging to ``console.log`` in its ``data_dir``: killed
    with this process, terminated by a finalizer at interpreter exit, and stopped and started
    again on the same data.

    Without ``data_dir`` a temporary folder (named after ``prefix``) holds the data and is
    removed by ``close``. Subclasses say how to ``start``: launch the JVM with ``_spawn``, then
    ``_wait_until`` it serves.
    """

    name = "the JVM"
    logs: tuple[str, ...] = ("console.log",)
    """Files in ``data_dir`` whose last lines explain a failed start."""

    def __init__(self, data_dir: Path | None, prefix: str) -> None:
        self._owns_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix=prefix)) if data_dir is None else data_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes], float], JvmServer] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        raise NotImplementedError

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        with (self.data_dir / "console.log").open("ab") as console:
            self._process = subprocess.Popen(
                command,
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self._finalizer = weakref.finalize(self, terminate, self._process, 5.0)
        return self._process

    def _wait_until(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        """Poll ``ready`` until it holds; the JVM exiting, or ``deadline`` passing, raises with
        the last lines of its logs."""
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self._process.returncode} while starting; "
                    f"last lines of its logs:\n{self._log_tail()}"
                )
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{self.name} did not {what} in time:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        paths = [self.data_dir / name for name in self.logs]
        text = "".join(p.read_text(errors="replace") for p in paths if p.exists())
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 20.0) -> None:
        """Controlled shutdown (SIGTERM), SIGKILL only if it overruns ``grace`` seconds."""
        if self._process is not None:
            terminate(self._process, grace)
        self._forget_process()

    def _forget_process(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
        self._process = None

    def close(self) -> None:
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        """Started; a start that fails leaves no folder behind either."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
