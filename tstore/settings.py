"""Every setting of the ``tstore`` processes, read once from ``TSTORE_*`` environment variables.

The libraries (``producers``, ``consumers``) take explicit arguments and never read the
environment; only the command line and the services built from it do, through this class.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from audio.stores import SECRET_VARIABLES, chunk_store_url
from consumers.storage.clickhouse import EMBEDDED, normalize_dsn, shown_dsn
from producers.kafka import (
    KafkaSecurity,
    KafkaSecurityError,
    SaslMechanism,
    SecurityProtocol,
    checked_bootstrap,
)
from schemas import Topics
from tstore.logging import Redactor

DSN_SCHEMES = (EMBEDDED, "http://", "https://")
"""What ``clickhouse_dsn`` may start with, as clickhouse-connect spells them (it compares
``chdb:`` case-sensitively): the embedded engine, or a server over HTTP."""


class BadSettingError(SystemExit):
    """Settings that do not validate, said in one line that names each setting at fault and
    holds none of the values given: pydantic's own error shows them (``input_value=``), and
    for a DSN, or a check of several settings (the whole environment), they hold passwords
    and tokens. A ``SystemExit``, so that a program that does not catch it (a benchmark, an
    example, a ``python -m`` module) ends with that line and exit code 1, not a traceback."""

    def __init__(self, error: ValidationError) -> None:
        problems = "; ".join(
            f"TSTORE_{'_'.join(str(p) for p in e['loc']).upper()}: {_reason(e['msg'])}"
            if e["loc"]
            else _reason(e["msg"])  # checks of several settings at once
            for e in error.errors(include_input=False, include_url=False)
        )
        self.message = Redactor(_given_secrets()).mask(f"bad setting: {problems}")
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def _reason(message: str) -> str:
    """A check's own words, without the class of error pydantic puts in front of them."""
    return message.removeprefix("Value error, ")


def _given_secrets() -> list[str]:
    """The credentials in the environment, read raw: settings that failed to validate cannot
    say which of their values are secret, and a check's words may quote one."""
    named = {"TSTORE_API_TOKEN", "TSTORE_KAFKA_PASSWORD", *SECRET_VARIABLES}
    found: list[str] = []
    for name, value in os.environ.items():
        if name.upper() in named:
            found.append(value)
        elif name.upper() == "TSTORE_CLICKHOUSE_DSN":
            try:
                password = urlsplit(value).password
            except ValueError:  # not a URL (a stray bracket): its shape is masked anyway
                password = None
            found += [password, unquote(password)] if password else []
    return [s for s in found if s]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TSTORE_", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "PLAIN"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ca_file: Path | None = None
    """PEM CAs the brokers' certificates are checked against; default: the system's."""
    kafka_cert_file: Path | None = None
    kafka_key_file: Path | None = None
    """A client certificate (PEM) and its private key, for brokers that ask for one."""
    topic_prefix: str = ""
    topic_partitions: int = Field(default=6, ge=1)
    data_dir: Path = Path("data")
    clickhouse_dsn: str | None = None
    """``chdb:///abs/path`` (embedded) or ``http://user:pass@host:8123``; default: embedded
    chDB under ``data_dir``. The scheme alone chooses the engine, and clickhouse-connect would
    take any other as HTTP, so one it does not know is refused here rather than reached."""
    clickhouse_database: str = Field(
        default="transcript_store", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"
    )
    consumer_group: str = "tstore-projector"
    consumer_session_timeout_ms: int = Field(default=10_000, ge=500)
    """How long a dead projector keeps its partitions before the group moves them."""
    batch_max_events: int = Field(default=50_000, ge=1)
    batch_max_wait_ms: int = Field(default=200, ge=1)
    """A projector's batch closes at this many events or after this long, whichever first."""
    projector_nice: int = Field(default=19, ge=0, le=19)
    """In ``tstore serve`` that projects and answers queries in one process, the nice value of
    the threads the projectors write through: reads go first and batches fill the gaps, so
    ingest slows reads less; the lag in every answer says how far behind that leaves the
    store. 0 shares the cores equally. The embedded engine applies it only on Linux in a
    process with CAP_SYS_NICE (``tstore serve`` warns at start without it)."""
    projector_nice_lag_s: float = Field(default=2.0, gt=0)
    """While the live projectors' lag is this or more, they write at nice 0, sharing the
    cores with reads: reads go first only while the store is nearly current. Under reads
    that kept both cores busy (``bench.query``), nice 19 alone left the store 10 s behind at
    the median and 22 s at worst."""
    retired_generations_kept: int = Field(default=2, ge=1)
    """After a cut-over, retired generations beyond the newest this many are dropped. At
    least one: readers that have not yet seen the cut-over (up to a second) read the
    generation it retired."""
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    """Where ``tstore serve`` (and ``tstore project``) answer HTTP, and where the command
    line looks for a running store."""
    api_token: SecretStr | None = None
    """Bearer token every ``/v1`` call must carry; required to listen off loopback."""
    log_format: str = Field(default="console", pattern="^(console|json)$")
    abandoned_after_s: float = Field(default=600.0, gt=0)
    """A session with no end (``SessionEnded``) and no event for longer than this is called
    abandoned rather than open: its bot died, or its end was lost on the way."""
    chunk_store: str | None = None
    """Where ``tstore simulate`` writes audio chunks: a folder (``file:///abs/dir`` or a path)
    or a bucket (``s3://bucket/prefix``, ``gs://bucket/prefix``, ``az://container/prefix``),
    with credentials from each cloud's own variables (README, "Chunk stores"). Held as its
    canonical URL: a path is made absolute. Default: ``chunks`` under ``data_dir``, beside the
    store, as the demo keeps them. The service needs none: it reads each chunk at the URI its
    event carries."""

    @classmethod
    def load(cls) -> Settings:
        """The settings of this process, from its environment: how every program builds them
        (the command line, the benchmarks, the examples), so that a bad one is said in one
        line without the secrets around it (``BadSettingError``). ``Settings()`` itself
        raises pydantic's error, which quotes the values given."""
        try:
            return cls()
        except ValidationError as exc:
            raise BadSettingError(exc) from None

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_is_host_ports(cls, bootstrap: str) -> str:
        try:
            return checked_bootstrap(bootstrap)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("bootstrap: ")) from None

    @field_validator("chunk_store")
    @classmethod
    def _chunk_store_is_a_url(cls, url: str | None) -> str | None:
        return None if url is None else chunk_store_url(url)

    @field_validator("clickhouse_dsn")
    @classmethod
    def _dsn_names_an_engine(cls, dsn: str | None) -> str | None:
        if dsn is None:
            return None
        if not dsn.startswith(DSN_SCHEMES):
            raise ValueError(
                f"unknown scheme in {shown_dsn(dsn)!r}: use {', '.join(DSN_SCHEMES)} "
                f"({EMBEDDED}/abs/path for the embedded engine)"
            )
        return normalize_dsn(dsn)

    @model_validator(mode="after")
    def _kafka_security_works(self) -> Settings:
        try:
            self.kafka_security  # noqa: B018 (built to be checked)
        except KafkaSecurityError as exc:
            names = " and ".join(f"TSTORE_KAFKA_{name.upper()}" for name in exc.fields)
            raise ValueError(f"{names}: {exc.reason}") from None
        return self

    @property
    def kafka_security(self) -> KafkaSecurity:
        """What every Kafka client of these processes is given to reach the brokers."""
        return KafkaSecurity(
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_username,
            password=self.kafka_password.get_secret_value() if self.kafka_password else None,
            ca_file=self.kafka_ca_file,
            cert_file=self.kafka_cert_file,
            key_file=self.kafka_key_file,
        )

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def secrets(self) -> list[str]:
        """Values no log line may show: the API token, the ClickHouse and Kafka passwords, the
        chunk stores' credentials in the environment."""
        password = urlsplit(self.clickhouse_dsn or "").password
        token = self.api_token.get_secret_value() if self.api_token else None
        kafka = self.kafka_password.get_secret_value() if self.kafka_password else None
        stores = [os.environ.get(name) for name in SECRET_VARIABLES]
        return [s for s in (token, password and unquote(password), kafka, *stores) if s]

    @property
    def service_url(self) -> str:
        host = f"[{self.http_host}]" if ":" in self.http_host else self.http_host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.http_port}"

    @property
    def dsn(self) -> str:
        return self.clickhouse_dsn or f"{EMBEDDED}{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def chunks(self) -> str:
        """``chunk_store``, else ``chunks`` under ``data_dir``: derived, as ``dsn`` is, so that
        both follow the ``data_dir`` the settings end up with."""
        return self.chunk_store or chunk_store_url(str(self.data_dir / "chunks"))
