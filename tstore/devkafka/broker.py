"""One Kafka JVM in KRaft combined mode (broker + controller) on free loopback ports.

The JVM is tied to the Python process that started it: it gets SIGKILL from the kernel if that
process dies (PR_SET_PDEATHSIG), and is terminated by a finalizer at interpreter exit, so a test
run that fails, is interrupted or is killed leaves no orphan broker behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tstore.devkafka.jars import require_tool, resolve_jars

_LOG4J_CONFIG = Path(__file__).with_name("log4j2.xml")
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Looked up in the parent: the forked child must not dlopen, another thread may hold the lock.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir / "kraft"),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
        # After a crash the restarted broker must wait out its previous registration; the 9 s
        # default would make every outage test pay that wait.
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
        # Lets crash tests use short consumer sessions, so a killed member leaves the group fast.
        "group.min.session.timeout.ms": "500",
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


class DevKafka:
    """A local broker; ``start`` after ``stop`` or ``kill`` brings the same broker back, on the
    same ports, with its data.

    Without ``data_dir`` a temporary folder holds the log and is removed by ``close``.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        heap: str = "512m",
        libs: Path | None = None,
    ) -> None:
        self._java = require_tool(
            "java", "the local Kafka broker is a JVM", "openjdk-17-jre-headless"
        )
        self._libs = libs or resolve_jars()
        self._owns_dir = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="tstore-kafka-")) if data_dir is None else data_dir
        )
        self.port = port or free_port()
        self.controller_port = free_port()
        self._heap = heap
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes], float], DevKafka] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def server_log(self) -> Path:
        return self.data_dir / "server.log"

    def _java_command(self, main: str, *args: str) -> list[str]:
        return [
            self._java,
            f"-Xmx{self._heap}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={_LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{self._libs}/*",
            main,
            *args,
        ]

    def _format_storage(self, config: Path) -> None:
        if (self.data_dir / "kraft" / "meta.properties").exists():
            return
        cluster_id = subprocess.run(
            self._java_command("kafka.tools.StorageTool", "random-uuid"),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        formatted = subprocess.run(
            self._java_command(
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(config),
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if formatted.returncode != 0:
            raise RuntimeError(f"formatting the KRaft log dir failed:\n{formatted.stderr[-3000:]}")

    def start(self, timeout: float = 60.0) -> str:
        if self._process is not None and self._process.poll() is None:
            return self.bootstrap
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        config.write_text(_server_properties(self.data_dir, self.port, self.controller_port))
        self._format_storage(config)
        with (self.data_dir / "console.log").open("ab") as console:
            self._process = subprocess.Popen(
                self._java_command("kafka.Kafka", str(config)),
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self._finalizer = weakref.finalize(self, _terminate, self._process, 5.0)
        deadline = time.monotonic() + timeout
        self._wait_until_accepting(deadline)
        self._wait_until_serving_groups(deadline)
        return self.bootstrap

    def _wait_until_accepting(self, deadline: float) -> None:
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"Kafka exited with code {self._process.returncode} while starting; "
                    f"last lines of {self.server_log}:\n{self._log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"Kafka did not accept connections in time:\n{self._log_tail()}")

    def _wait_until_serving_groups(self, deadline: float) -> None:
        """Wait until a consumer group can be coordinated.

        On a fresh broker the first coordinator lookup creates the offsets topic, and until it
        exists every consumer logs errors. Probed from a helper thread so that ``start`` also
        works when called from inside a running event loop.
        """

        async def probe() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            try:
                while True:
                    try:
                        await admin.find_coordinator("tstore-devkafka-readiness")
                        return
                    except KafkaError:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.1)
            finally:
                await admin.close()

        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, probe()).result()

    def _log_tail(self, lines: int = 30) -> str:
        logs = [self.server_log, self.data_dir / "console.log"]
        text = "".join(p.read_text(errors="replace") for p in logs if p.exists())
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 20.0) -> None:
        """Controlled shutdown (SIGTERM), SIGKILL only if it overruns ``grace`` seconds."""
        if self._process is not None:
            _terminate(self._process, grace)
        self._forget_process()

    def kill(self) -> None:
        """Crash the broker (SIGKILL), as a failing machine would; ``start`` recovers it."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._forget_process()

    def _forget_process(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
        self._process = None

    def close(self) -> None:
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> DevKafka:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
