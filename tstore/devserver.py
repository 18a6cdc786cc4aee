"""What the local servers for development and tests share (Kafka, s3proxy, fake-gcs-server,
Azurite): a program fetched or built once into a cache outside the repo, then run as a child
process tied to the Python process that started it.

A child gets SIGKILL from the kernel if its parent dies (PR_SET_PDEATHSIG), so a test run that
is killed leaves no orphan server behind.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Tool:
    """A program that fetches or builds a server, asked for only when the cache lacks it."""

    name: str
    why: str
    package: str
    """The Debian package that brings it."""
    alternative: str = ""

    def path(self) -> str:
        return require_tool(self.name, self.why, self.package, self.alternative)


def resolve_once(
    target: Path, tool: Tool, build: Callable[[str, Path], None], *, what: str
) -> Path:
    """Return ``target``, first made by ``build(tool's path, staged)`` unless it exists.

    ``build`` fills a folder beside ``target`` that is then renamed into place, so an
    interrupted resolution is simply redone and never leaves a half-filled cache that looks
    complete. A ``build`` that leaves ``staged`` empty has failed.
    """
    if target.exists():
        return target
    program = tool.path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".resolving-") as tmp:
        staged = Path(tmp) / target.name
        build(program, staged)
        if not staged.exists():
            raise RuntimeError(f"resolving {what} left nothing in {staged}")
        staged.rename(target)
    return target


def run_tool(command: Sequence[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run a resolving command (Maven, go, npm) quietly; its failure raises with the end of
    what it printed, which is where the reason is."""
    result = subprocess.run(list(command), capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"could not resolve {what} (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def loopback_request(
    port: int,
    method: str = "GET",
    path: str = "/",
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes] | None:
    """One request to a loopback server: its status and body, or ``None`` if nothing answered
    (yet). Enough for the few admin calls the emulators need, without a client library."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def expect(answer: tuple[int, bytes] | None, accepted: Collection[int], what: str) -> bytes:
    """The body of an admin call's answer; a refusal raises ``ValueError`` for a bad request
    (a name the server refuses) and ``RuntimeError`` otherwise, with what the server said."""
    if answer is None:
        raise RuntimeError(f"{what}: the server did not answer")
    status, body = answer
    if status in accepted:
        return body
    text = body.decode(errors="replace")
    message = re.search(r"<Message>([^<\n]*)", text)  # Azure's XML error, else all of it
    said = " ".join((message.group(1) if message else text).split())[:400]
    raise (ValueError if status == 400 else RuntimeError)(f"{what}: refused ({status}) {said}")


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


class LocalServer:
    """A server process of this one, logging to ``console.log`` in its ``data_dir``: killed
    with this process, terminated by a finalizer at interpreter exit, and stopped and started
    again on the same data.

    Without ``data_dir`` a temporary folder (named after ``prefix``) holds the data and is
    removed by ``close``. Subclasses say how to ``start``: launch the program with ``_spawn``,
    then ``_wait_until`` it serves.
    """

    name = "the server"
    logs: tuple[str, ...] = ("console.log",)
    """Files in ``data_dir`` whose last lines explain a failed start."""

    def __init__(self, data_dir: Path | None, prefix: str) -> None:
        self._owns_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix=prefix)) if data_dir is None else data_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes], float], LocalServer] | None = (
            None
        )

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        raise NotImplementedError

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
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
        """Poll ``ready`` until it holds; the process exiting, or ``deadline`` passing, raises
        with the last lines of its logs."""
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


class ObjectServer(LocalServer):
    """A local server of one cloud's object storage API on a loopback port, as the chunk store
    tests and ``tstore dev-*`` commands use it, whichever cloud it speaks."""

    scheme = ""
    """The chunk store URL scheme it serves (``s3``, ``gs``, ``az``)."""
    endpoint_variable = ""
    """The variable through which obstore finds the endpoint, so a test can point it elsewhere."""

    def __init__(self, data_dir: Path | None, prefix: str, port: int | None) -> None:
        super().__init__(data_dir, prefix)
        self.port = port or free_port()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> str:
        """Start the server unless it runs; returns its endpoint once it answers requests."""
        if self.running:
            return self.endpoint
        self._spawn(self._command())
        self._wait_until(self._answering, time.monotonic() + timeout, "answer requests")
        return self.endpoint

    def _command(self) -> list[str]:
        """The command line that serves ``data_dir`` on ``port``, its configuration written."""
        raise NotImplementedError

    def _answering(self) -> bool:
        raise NotImplementedError

    def client_env(self) -> dict[str, str]:
        """The variables with which obstore, and the cloud's own tools, reach this server."""
        raise NotImplementedError

    def create_bucket(self, name: str) -> str:
        """Make a bucket (or container) unless it exists; returns ``name``. A name the cloud
        would refuse raises ``ValueError``."""
        raise NotImplementedError

    def upload(self, bucket: str, key: str, data: bytes) -> None:
        """Store an object as another writer would, through the server's own API rather than
        obstore's."""
        raise NotImplementedError
