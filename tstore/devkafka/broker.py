"""One Kafka JVM in KRaft combined mode (broker + controller) on free loopback ports.

The JVM is tied to the Python process that started it: it gets SIGKILL from the kernel if that
process dies (PR_SET_PDEATHSIG), and is terminated by a finalizer at interpreter exit, so a test
run that fails, is interrupted or is killed leaves no orphan broker behind.

With ``sasl_ssl`` the broker also listens as managed Kafka services do: TLS with a certificate
from a private CA (``tls``), and a SASL login (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN) as one
user, whose SCRAM credentials are written when the storage is formatted.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from producers.kafka import PLAINTEXT, KafkaSecurity, SaslMechanism
from tstore.devjvm import JvmServer
from tstore.devjvm import free_port as free_port  # where the tests have always found it
from tstore.devkafka.jars import require_tool, resolve_jars
from tstore.devkafka.tls import BrokerTls, broker_tls

_LOG4J_CONFIG = Path(__file__).with_name("log4j2.xml")
SASL_USER = "tstore"
SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


@dataclass(frozen=True)
class SaslSslListener:
    port: int
    password: str
    """Of ``SASL_USER``."""
    tls: BrokerTls

    def properties(self) -> dict[str, str]:
        """The listener's part of ``server.properties``."""
        at = "listener.name.sasl_ssl."
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        plain = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{SASL_USER}="{self.password}";'
        )
        return {
            f"{at}sasl.enabled.mechanisms": ",".join([*SCRAM_MECHANISMS, "PLAIN"]),
            **{f"{at}{m.lower()}.sasl.jaas.config": scram for m in SCRAM_MECHANISMS},
            f"{at}plain.sasl.jaas.config": plain,
            f"{at}ssl.keystore.type": "PKCS12",
            f"{at}ssl.keystore.location": str(self.tls.keystore),
            f"{at}ssl.keystore.password": self.tls.password,
            f"{at}ssl.key.password": self.tls.password,
        }

    def scram_users(self) -> list[str]:
        """``StorageTool format`` arguments that create the user's SCRAM credentials."""
        user = f"[name={SASL_USER},password={self.password}]"
        return [arg for m in SCRAM_MECHANISMS for arg in ("--add-scram", f"{m}={user}")]


def _server_properties(
    data_dir: Path, port: int, controller_port: int, sasl_ssl: SaslSslListener | None = None
) -> str:
    listeners = {"PLAINTEXT": port} | ({"SASL_SSL": sasl_ssl.port} if sasl_ssl else {})
    advertised = ",".join(f"{name}://127.0.0.1:{at}" for name, at in listeners.items())
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "listeners": f"{advertised},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": advertised,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join(
            [*(f"{name}:{name}" for name in listeners), "CONTROLLER:PLAINTEXT"]
        ),
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
    } | (sasl_ssl.properties() if sasl_ssl else {})
    return "".join(f"{key}={value}\n" for key, value in settings.items())


class DevKafka(JvmServer):
    """A local broker; ``start`` after ``stop`` or ``kill`` brings the same broker back, on the
    same ports, with its data.

    Without ``data_dir`` a temporary folder holds the log and is removed by ``close``. With
    ``sasl_ssl`` a second listener (``sasl_ssl_bootstrap``) takes TLS and a SASL login, and
    ``client_security`` is how a client reaches it; ``data_dir`` must then be fresh or one a
    ``sasl_ssl`` broker made (the SCRAM user is created when the storage is formatted).
    """

    name = "Kafka"
    logs = ("server.log", "console.log")

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        heap: str = "512m",
        libs: Path | None = None,
        sasl_ssl: bool = False,
    ) -> None:
        self._java = require_tool(
            "java", "the local Kafka broker is a JVM", "openjdk-17-jre-headless"
        )
        self._libs = libs or resolve_jars()
        super().__init__(data_dir, prefix="tstore-kafka-")
        self.port = port or free_port()
        self.controller_port = free_port()
        self._sasl_ssl = self._sasl_ssl_listener() if sasl_ssl else None
        self._heap = heap

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self._secured().port}"

    def client_security(self, mechanism: SaslMechanism = "SCRAM-SHA-512") -> KafkaSecurity:
        """How a client logs in on ``sasl_ssl_bootstrap``."""
        listener = self._secured()
        return KafkaSecurity(
            security_protocol="SASL_SSL",
            sasl_mechanism=mechanism,
            username=SASL_USER,
            password=listener.password,
            ca_file=listener.tls.ca_file,
        )

    def _secured(self) -> SaslSslListener:
        if self._sasl_ssl is None:
            raise RuntimeError("this broker has no SASL_SSL listener: DevKafka(sasl_ssl=True)")
        return self._sasl_ssl

    def _sasl_ssl_listener(self) -> SaslSslListener:
        """Its password is kept with the data: the SCRAM credentials live in the log."""
        saved = self.data_dir / "sasl-password"
        if not saved.exists():
            if (self.data_dir / "kraft" / "meta.properties").exists():
                raise RuntimeError(
                    f"{self.data_dir} was formatted without the SASL user; "
                    "a sasl_ssl broker needs a fresh data_dir"
                )
            self.data_dir.mkdir(parents=True, exist_ok=True)
            saved.write_text(secrets.token_hex(16))
        keytool = require_tool(
            "keytool", "the TLS listener's certificates are made with it", "openjdk-17-jre-headless"
        )
        return SaslSslListener(
            port=free_port(),
            password=saved.read_text().strip(),
            tls=broker_tls(self.data_dir / "tls", keytool),
        )

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
                *(self._sasl_ssl.scram_users() if self._sasl_ssl else []),
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if formatted.returncode != 0:
            raise RuntimeError(f"formatting the KRaft log dir failed:\n{formatted.stderr[-3000:]}")

    def start(self, timeout: float = 60.0) -> str:
        if self.running:
            return self.bootstrap
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        config.write_text(
            _server_properties(self.data_dir, self.port, self.controller_port, self._sasl_ssl)
        )
        self._format_storage(config)
        self._spawn(self._java_command("kafka.Kafka", str(config)))
        deadline = time.monotonic() + timeout
        self._wait_until(self._accepting, deadline, "accept connections")
        self._wait_until_serving_groups(deadline, self.bootstrap)
        if self._sasl_ssl is not None:
            self._wait_until_serving_groups(
                deadline, self.sasl_ssl_bootstrap, self.client_security()
            )
        return self.bootstrap

    def _accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _wait_until_serving_groups(
        self, deadline: float, bootstrap: str, security: KafkaSecurity = PLAINTEXT
    ) -> None:
        """Wait until a consumer group can be coordinated (and a client log in, if it must).

        On a fresh broker the first coordinator lookup creates the offsets topic, and until it
        exists every consumer logs errors. Probed from a helper thread so that ``start`` also
        works when called from inside a running event loop.
        """

        async def probe() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
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

    def kill(self) -> None:
        """Crash the broker (SIGKILL), as a failing machine would; ``start`` recovers it."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._forget_process()
