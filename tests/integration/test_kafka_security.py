"""Every client over SASL_SSL against a real broker: the bot's producer, the projector and its
dead letters, topic creation; and the failures a wrong login or protocol gives, said plainly,
within seconds, without a secret in any log line."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaConnectionError
from clickhouse_connect.driver.client import Client

from consumers.projector import Projector
from consumers.storage.clickhouse import Store
from consumers.topics_admin import ensure_topics
from producers import DeliveryConfig, KafkaSecurity, TranscriptProducer
from producers.kafka import PLAINTEXT, kafka_producer
from schemas import Topics
from tests.commands import run_tstore
from tests.conftest import TEST_PARTITIONS, unique_name
from tstore.devkafka import DevKafka

pytestmark = pytest.mark.integration

FAILS_WITHIN_S = 10.0
"""A refused login or a wrong protocol is a fast, final answer, not a timeout."""


@pytest.fixture(scope="module")
def secured() -> Iterator[DevKafka]:
    with DevKafka(sasl_ssl=True) as broker:
        yield broker


@pytest.fixture
def security(secured: DevKafka) -> KafkaSecurity:
    return secured.client_security()


@pytest.fixture
def wrong_password(security: KafkaSecurity) -> KafkaSecurity:
    return dataclasses.replace(security, password="not-the-password-" + unique_name("x"))


@pytest_asyncio.fixture
async def secure_topics(secured: DevKafka, security: KafkaSecurity) -> AsyncIterator[Topics]:
    created = Topics(prefix=f"{unique_name('sec')}.")
    await ensure_topics(
        secured.sasl_ssl_bootstrap, created, partitions=TEST_PARTITIONS, security=security
    )
    yield created


async def _read(
    bootstrap: str, security: KafkaSecurity, topic: str, expected: int
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        **security.client_options(),
    )
    await consumer.start()
    got: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got += records
    finally:
        await consumer.stop()
    return got


def _talk(producer: TranscriptProducer, session_id: str) -> None:
    started = datetime.now(UTC)
    producer.turn_started(session_id, "t1", "user", started_at=started)
    producer.turn_stopped(session_id, "t1", "user", text="Over TLS, please", started_at=started)


async def test_a_turn_and_a_bad_record_go_bot_to_store_and_dead_letters_over_sasl_ssl(
    secured: DevKafka,
    security: KafkaSecurity,
    secure_topics: Topics,
    clickhouse: Client,
    tmp_path: Path,
) -> None:
    bootstrap = secured.sasl_ssl_bootstrap
    session_id = unique_name("session")
    async with TranscriptProducer(
        bootstrap,
        bot_id="secure-bot",
        topics=secure_topics,
        spool_dir=tmp_path / "spool",
        kafka_security=security,
    ) as producer:
        _talk(producer, session_id)
    assert (producer.stats.published, producer.stats.errors) == (2, 0)

    raw = kafka_producer(bootstrap, security=security)
    await raw.start()
    try:
        await raw.send_and_wait(secure_topics.turn_events, b"not avro", key=b"evil")
    finally:
        await raw.stop()

    store = Store(clickhouse)
    async with Projector(
        bootstrap=bootstrap,
        topics=secure_topics,
        group_id=unique_name("g"),
        store=store,
        security=security,
    ) as projector:
        await projector.catch_up()
    assert [t.text for t in store.session(session_id)] == ["Over TLS, please"]
    assert projector.stats.rejected == 1

    (letter,) = await _read(bootstrap, security, secure_topics.dead_letters, 1)
    assert letter.value == b"not avro"
    assert dict(letter.headers)["tstore-reason"] == b"bad-framing"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
async def test_the_other_mechanisms_log_in_too(secured: DevKafka, mechanism: str) -> None:
    security = secured.client_security(mechanism)  # type: ignore[arg-type]
    topics = Topics(prefix=f"{unique_name('mech')}.")
    await ensure_topics(secured.sasl_ssl_bootstrap, topics, partitions=1, security=security)


async def test_a_wrong_password_fails_the_projector_at_once_saying_why(
    secured: DevKafka, wrong_password: KafkaSecurity, secure_topics: Topics, clickhouse: Client
) -> None:
    began = time.monotonic()
    projector = Projector(
        bootstrap=secured.sasl_ssl_bootstrap,
        topics=secure_topics,
        group_id=unique_name("g"),
        store=Store(clickhouse),
        security=wrong_password,
    )
    with pytest.raises(KafkaConnectionError, match="authentication failed for user 'tstore'"):
        await projector.start()
    assert time.monotonic() - began < FAILS_WITHIN_S


async def test_a_plaintext_client_on_the_tls_port_fails_at_once_saying_why(
    secured: DevKafka,
) -> None:
    began = time.monotonic()
    with pytest.raises(KafkaConnectionError, match="another security protocol than PLAINTEXT"):
        await ensure_topics(
            secured.sasl_ssl_bootstrap, Topics("plain."), partitions=1, security=PLAINTEXT
        )
    assert time.monotonic() - began < FAILS_WITHIN_S


async def test_without_the_ca_the_broker_certificate_is_refused(
    secured: DevKafka, security: KafkaSecurity
) -> None:
    system_cas = dataclasses.replace(security, ca_file=None)
    with pytest.raises(KafkaConnectionError, match="certificate is not trusted"):
        await ensure_topics(
            secured.sasl_ssl_bootstrap, Topics("ca."), partitions=1, security=system_cas
        )


async def test_a_bot_with_a_wrong_password_keeps_its_events_and_logs_why(
    secured: DevKafka,
    security: KafkaSecurity,
    wrong_password: KafkaSecurity,
    secure_topics: Topics,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bootstrap = secured.sasl_ssl_bootstrap
    spool = tmp_path / "spool"
    session_id = unique_name("session")
    caplog.set_level(logging.WARNING)
    refused = TranscriptProducer(
        bootstrap,
        bot_id="wrong-password-bot",
        topics=secure_topics,
        spool_dir=spool,
        kafka_security=wrong_password,
        delivery=DeliveryConfig(retry_pause_s=0.2, max_retry_pause_s=0.5),
    )
    async with refused:
        _talk(refused, session_id)
        for _ in range(int(FAILS_WITHIN_S * 10)):
            if refused.stats.errors >= 2:
                break
            await asyncio.sleep(0.1)
        assert refused.stats.errors >= 2, "the producer keeps trying"
        assert refused.stats.published == 0
    assert refused.stats.spooled + refused.stats.backlog >= 2, refused.stats
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Authentication failed" in logged
    assert wrong_password.password is not None
    assert wrong_password.password not in logged

    async with TranscriptProducer(
        bootstrap,
        bot_id="wrong-password-bot",
        topics=secure_topics,
        spool_dir=spool,
        kafka_security=security,
    ) as fixed:
        pass
    assert fixed.stats.published >= 2
    got = await _read(bootstrap, security, secure_topics.turn_events, 2)
    assert {r.key for r in got} == {session_id.encode()}


def _settings(secured: DevKafka, security: KafkaSecurity, **more: str) -> dict[str, str]:
    assert security.password is not None
    return {
        "TSTORE_KAFKA_BOOTSTRAP": secured.sasl_ssl_bootstrap,
        "TSTORE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "TSTORE_KAFKA_SASL_MECHANISM": security.sasl_mechanism,
        "TSTORE_KAFKA_USERNAME": security.username or "",
        "TSTORE_KAFKA_PASSWORD": security.password,
        "TSTORE_KAFKA_CA_FILE": str(security.ca_file),
        "TSTORE_TOPIC_PREFIX": f"{unique_name('cli')}.",
        "TSTORE_LOG_FORMAT": "json",
        **more,
    }


def test_create_topics_with_a_wrong_password_says_authentication_failed_and_not_the_password(
    secured: DevKafka, wrong_password: KafkaSecurity, tmp_path: Path
) -> None:
    began = time.monotonic()
    result = run_tstore("create-topics", cwd=tmp_path, **_settings(secured, wrong_password))
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    assert "authentication failed for user 'tstore' with SCRAM-SHA-512" in said
    assert "Traceback" not in said
    assert wrong_password.password is not None
    assert wrong_password.password not in said
    assert time.monotonic() - began < 60, "python start included; the failure itself is fast"


@pytest.fixture
def client_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway client certificate and key (PEM): the broker does not ask for one, but the
    client loads it, so its key is in the process and must not reach a log line."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl makes the test's client key")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-subj", "/CN=tstore-test-client", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_a_tstore_run_with_the_secrets_logs_neither_password_nor_key(
    secured: DevKafka,
    security: KafkaSecurity,
    client_certificate: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    cert, key = client_certificate
    settings = _settings(
        secured,
        security,
        TSTORE_KAFKA_CERT_FILE=str(cert),
        TSTORE_KAFKA_KEY_FILE=str(key),
    )
    created = run_tstore("create-topics", cwd=tmp_path, **settings)
    assert created.returncode == 0, created.stderr
    simulated = run_tstore(
        "simulate", "--sessions", "1", "--turns", "1", "--no-audio", cwd=tmp_path, **settings
    )
    assert simulated.returncode == 0, simulated.stderr
    assert " 0 spooled, 0 dropped" in simulated.stdout, simulated.stdout
    said = created.stdout + created.stderr + simulated.stdout + simulated.stderr
    assert security.password is not None
    assert security.password not in said
    key_body = "".join(
        line for line in key.read_text().splitlines() if not line.startswith("-----")
    )
    assert key_body[:40] not in said
