"""The one place the project's Kafka clients are configured: the bot side's producer, and how
every client (producer, consumer, admin, on either side) reaches a secured cluster.

``acks=all`` with idempotence means an acknowledged event is on the broker once per partition,
in the order sent, even when the client retries internally.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, get_args

from aiokafka import AIOKafkaProducer
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.metadata import MetadataRequest

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSecurityError(ValueError):
    """A combination of security options that cannot work; ``fields`` are the options at
    fault, so that a caller can name them as its users set them (``TSTORE_KAFKA_*``)."""

    def __init__(self, fields: tuple[str, ...], reason: str) -> None:
        super().__init__(f"{' and '.join(fields)}: {reason}")
        self.fields = fields
        self.reason = reason


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client reaches the brokers: TLS (``SSL``), a SASL login (``SASL_PLAINTEXT``),
    both (``SASL_SSL``, what managed Kafka services ask for), or neither.

    Without ``ca_file`` the broker's certificate is checked against the system's CAs;
    ``cert_file`` and ``key_file`` are a client certificate, for brokers that ask for one.
    """

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | Path | None = None
    cert_file: str | Path | None = None
    key_file: str | Path | None = None

    def __post_init__(self) -> None:
        for name, allowed in (
            ("security_protocol", SecurityProtocol),
            ("sasl_mechanism", SaslMechanism),
        ):
            value = getattr(self, name)
            if value not in get_args(allowed):
                raise KafkaSecurityError(
                    (name,), f"{value!r} is not one of {', '.join(get_args(allowed))}"
                )
        protocol = self.security_protocol
        login = ("username", "password")
        missing = tuple(name for name in login if not getattr(self, name))
        if self.sasl and missing:
            raise KafkaSecurityError(missing, f"{protocol} logs in with a username and a password")
        if not self.sasl and len(missing) < len(login):
            raise KafkaSecurityError(
                tuple(name for name in login if name not in missing),
                f"set, but {protocol} does not log in (SASL_SSL and SASL_PLAINTEXT do)",
            )
        files = tuple(f.name for f in fields(self) if f.name.endswith("_file"))
        given = tuple(name for name in files if getattr(self, name) is not None)
        if given and not self.tls:
            raise KafkaSecurityError(given, f"set, but {protocol} has no TLS (SSL and SASL_SSL do)")
        if self.key_file is not None and self.cert_file is None:
            raise KafkaSecurityError(("key_file",), "a client key needs its certificate too")
        for name in given:
            if not Path(getattr(self, name)).is_file():
                raise KafkaSecurityError((name,), f"no such file: {getattr(self, name)}")

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol.endswith("SSL")

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.sasl:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        if self.tls:
            options["ssl_context"] = create_ssl_context(
                cafile=self.ca_file, certfile=self.cert_file, keyfile=self.key_file
            )
        return options


PLAINTEXT = KafkaSecurity()


class _Client(Protocol):
    def start(self) -> Awaitable[None]: ...


C = TypeVar("C", bound=_Client)


async def started(client: C, bootstrap: str, security: KafkaSecurity) -> C:
    """``client.start()``; when it cannot reach the brokers, the error says why if a fresh
    connection can tell (aiokafka's own only says it could not bootstrap)."""
    try:
        await client.start()
    except KafkaConnectionError as exc:
        problem = await connection_problem(bootstrap, security)
        if problem is None:
            raise
        raise KafkaConnectionError(f"{bootstrap}: {problem}") from exc
    return client


async def connection_problem(
    bootstrap: str, security: KafkaSecurity, timeout_s: float = 10.0
) -> str | None:
    """Why a client with ``security`` cannot talk to the first broker of ``bootstrap``, from
    one connection (and login) attempt; None if it can."""
    host, port, _ = collect_hosts(bootstrap, randomize=False)[0]
    try:
        conn = await asyncio.wait_for(
            create_conn(
                host, port, request_timeout_ms=int(timeout_s * 1000), **security.client_options()
            ),
            timeout_s,
        )
        try:
            await conn.send(MetadataRequest([]))
        finally:
            conn.close()
    except SaslAuthenticationFailed as exc:
        return (
            f"authentication failed for user {security.username!r} with "
            f"{security.sasl_mechanism}: the broker refused the username or password ({exc})"
        )
    except UnsupportedSaslMechanismError as exc:
        return str(exc)
    except ssl.SSLCertVerificationError as exc:
        return (
            f"the broker's TLS certificate is not trusted ({exc.verify_message}): "
            "the CA file must hold the CA that signed it"
        )
    except ConnectionRefusedError:
        return "nothing listens there"
    except socket.gaierror as exc:
        return f"the host {host!r} cannot be found ({exc.strerror}): is the address right?"
    except TimeoutError:
        return (
            f"no answer within {timeout_s:g} s: is the broker up? (a listener that wants "
            f"another security protocol than {security.security_protocol} may stay silent too)"
        )
    except (OSError, KafkaError) as exc:
        return (
            f"the connection failed ({str(exc) or type(exc).__name__}): the listener may want "
            f"another security protocol than {security.security_protocol} (TLS, SASL, neither)"
        )
    return None


MAX_REQUEST_BYTES = 1024 * 1024
"""The largest request the bot side's producer sends (the broker's default cap is as large)."""
MAX_EVENT_BYTES = MAX_REQUEST_BYTES - 1024
"""The largest encoded event (value and key) that fits one request, its headers beside it."""


_HOST = re.compile(r"[A-Za-z0-9._:-]+")
"""A host name or an IP address (IPv6 without its brackets)."""


def checked_bootstrap(bootstrap: str) -> str:
    """``bootstrap`` if it is what Kafka clients take, ``host:port`` comma-separated (IPv6 in
    brackets, the port 9092 when left out; an empty entry, as after a trailing comma, is
    passed over as the clients pass it over); else a ValueError that names it. Taken as it
    was, a port that is no number or out of range failed in the client's first connect, where
    it stopped a producer's delivery without a word, and a URL, or hosts parted by ``;`` or
    spaces, were tried as one host for ever."""
    if "://" in bootstrap:
        raise ValueError("bootstrap: give host:port, not a URL")
    entries = [entry for entry in bootstrap.split(",") if entry.strip()]
    try:
        hosts = collect_hosts(entries, randomize=False)
    except ValueError:
        hosts = []
    for host, port, _ in hosts or [("", 0, None)]:
        if not _HOST.fullmatch(host) or not 0 < port < 65536:
            raise ValueError("bootstrap: not host:port[,host:port...] with ports 1-65535")
    return bootstrap


def kafka_producer(
    bootstrap: str,
    *,
    security: KafkaSecurity = PLAINTEXT,
    compression: str | None = "zstd",
    linger_ms: int = 5,
    request_timeout_ms: int = 30_000,
    max_request_size: int = MAX_REQUEST_BYTES,
) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type=compression,
        linger_ms=linger_ms,
        request_timeout_ms=request_timeout_ms,
        max_request_size=max_request_size,
        **security.client_options(),
    )
