"""The security options of every Kafka client: which combinations are refused and how the
refusal names the setting, what the clients are given, and the local broker's listener."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from producers.kafka import PLAINTEXT, KafkaSecurity, KafkaSecurityError, connection_problem
from tstore.cli import app
from tstore.devkafka import DevKafka
from tstore.devkafka.broker import SaslSslListener, _server_properties
from tstore.devkafka.tls import BrokerTls, keytool_steps
from tstore.settings import Settings

SASL: dict[str, Any] = {"security_protocol": "SASL_SSL", "username": "bot", "password": "pw"}


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    """Any existing file: which files exist is checked up front, their content when used."""
    path = tmp_path / "ca.pem"
    path.write_text("not read here")
    return path


@pytest.mark.parametrize(
    ("options", "fields", "reason"),
    [
        ({"security_protocol": "TLS"}, ("security_protocol",), "'TLS' is not one of PLAINTEXT"),
        ({**SASL, "sasl_mechanism": "GSSAPI"}, ("sasl_mechanism",), "not one of PLAIN"),
        ({"security_protocol": "SASL_SSL"}, ("username", "password"), "SASL_SSL logs in"),
        ({**SASL, "password": ""}, ("password",), "with a username and a password"),
        ({"username": "bot"}, ("username",), "PLAINTEXT does not log in"),
        ({"security_protocol": "SSL", "password": "pw"}, ("password",), "SSL does"),
        ({"key_file": "k", "cert_file": "c"}, ("cert_file", "key_file"), "PLAINTEXT has no TLS"),
        ({**SASL, "security_protocol": "SASL_PLAINTEXT", "ca_file": "x"}, ("ca_file",), "TLS"),
        ({"security_protocol": "SSL", "key_file": "k"}, ("key_file",), "needs its certificate"),
        ({"security_protocol": "SSL", "ca_file": "/no/ca.pem"}, ("ca_file",), "no such file"),
    ],
)
def test_combinations_that_cannot_work_are_refused_naming_the_options(
    options: dict[str, Any], fields: tuple[str, ...], reason: str
) -> None:
    with pytest.raises(KafkaSecurityError, match=reason) as refused:
        KafkaSecurity(**options)
    assert refused.value.fields == fields


def test_plaintext_gives_the_clients_nothing_but_the_protocol() -> None:
    assert KafkaSecurity().client_options() == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_gives_the_login_and_a_verifying_tls_context_with_the_system_cas() -> None:
    options = KafkaSecurity(**SASL, sasl_mechanism="SCRAM-SHA-512").client_options()
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "bot",
        "sasl_plain_password": "pw",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_sasl_plaintext_has_no_tls_and_ssl_has_no_login() -> None:
    assert (
        "ssl_context"
        not in KafkaSecurity(**{**SASL, "security_protocol": "SASL_PLAINTEXT"}).client_options()
    )
    assert "sasl_plain_password" not in KafkaSecurity(security_protocol="SSL").client_options()


def test_the_password_is_not_in_the_repr() -> None:
    assert "pw" not in repr(KafkaSecurity(**SASL))


def test_settings_build_the_security_and_mask_the_password(
    monkeypatch: pytest.MonkeyPatch, pem: Path
) -> None:
    for name, value in {
        "SECURITY_PROTOCOL": "SASL_SSL",
        "SASL_MECHANISM": "SCRAM-SHA-256",
        "USERNAME": "bot",
        "PASSWORD": "kafka-s3cret",
        "CA_FILE": str(pem),
    }.items():
        monkeypatch.setenv(f"TSTORE_KAFKA_{name}", value)
    settings = Settings()
    assert settings.kafka_security == KafkaSecurity(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        username="bot",
        password="kafka-s3cret",
        ca_file=pem,
    )
    assert "kafka-s3cret" in settings.secrets
    assert "kafka-s3cret" not in repr(settings)


def test_by_default_kafka_is_plaintext() -> None:
    assert Settings().kafka_security == KafkaSecurity()


@pytest.mark.parametrize(
    ("env", "said"),
    [
        (
            {"TSTORE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TSTORE_KAFKA_USERNAME": "bot"},
            "TSTORE_KAFKA_PASSWORD: SASL_SSL logs in with a username",
        ),
        (
            {"TSTORE_KAFKA_USERNAME": "bot"},
            "TSTORE_KAFKA_USERNAME: set, but PLAINTEXT does not log in",
        ),
        (
            {"TSTORE_KAFKA_SECURITY_PROTOCOL": "SSL", "TSTORE_KAFKA_KEY_FILE": "/k"},
            "TSTORE_KAFKA_KEY_FILE: a client key needs its certificate too",
        ),
        (
            {"TSTORE_KAFKA_SASL_MECHANISM": "KERBEROS"},
            "TSTORE_KAFKA_SASL_MECHANISM: Input should be 'PLAIN'",
        ),
    ],
)
def test_the_command_line_names_the_settings_at_fault(env: dict[str, str], said: str) -> None:
    result = CliRunner().invoke(app, ["create-topics"], env=env)
    assert result.exit_code == 1
    assert f"bad setting: {said}" in result.output
    assert "Traceback" not in result.output


def test_the_sasl_ssl_listener_is_configured_beside_the_plaintext_one(tmp_path: Path) -> None:
    listener = SaslSslListener(port=9093, password="pw", tls=BrokerTls(tmp_path))
    (tmp_path / "store-password").write_text("storepw")
    lines = _server_properties(tmp_path, 9092, 9094, listener).splitlines()
    props = dict(line.split("=", 1) for line in lines)
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094"
    )
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9093"
    assert props["listener.security.protocol.map"] == (
        "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    )
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    at = "listener.name.sasl_ssl."
    assert props[f"{at}sasl.enabled.mechanisms"] == "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"
    assert "ScramLoginModule required;" in props[f"{at}scram-sha-512.sasl.jaas.config"]
    assert 'user_tstore="pw";' in props[f"{at}plain.sasl.jaas.config"]
    assert props[f"{at}ssl.keystore.location"] == str(tmp_path / "broker.p12")
    assert props[f"{at}ssl.keystore.password"] == "storepw"
    assert listener.scram_users() == [
        "--add-scram",
        "SCRAM-SHA-512=[name=tstore,password=pw]",
        "--add-scram",
        "SCRAM-SHA-256=[name=tstore,password=pw]",
    ]


def test_without_sasl_ssl_only_the_plaintext_listener_is_configured(tmp_path: Path) -> None:
    props = dict(line.split("=", 1) for line in _server_properties(tmp_path, 1, 2).splitlines())
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:1,CONTROLLER://127.0.0.1:2"
    assert not [key for key in props if key.startswith("listener.name.")]


def test_the_broker_certificate_is_signed_by_the_ca_for_the_loopback_address(
    tmp_path: Path,
) -> None:
    steps = keytool_steps(BrokerTls(tmp_path), "storepw")
    assert [step[0] for step in steps] == [
        "-genkeypair",
        "-exportcert",
        "-genkeypair",
        "-certreq",
        "-gencert",
        "-importcert",
        "-importcert",
    ]
    assert all(step[-2:] == ["-storepass", "storepw"] for step in steps)
    signing = steps[4]
    assert "SAN=ip:127.0.0.1,dns:localhost" in signing
    assert signing[signing.index("-validity") + 1] == "3650"


def test_a_sasl_ssl_broker_refuses_a_data_dir_formatted_without_its_user(tmp_path: Path) -> None:
    (tmp_path / "kraft").mkdir()
    (tmp_path / "kraft" / "meta.properties").write_text("")
    with pytest.raises(RuntimeError, match="formatted without the SASL user"):
        DevKafka(tmp_path, libs=tmp_path, sasl_ssl=True)


def test_a_broker_without_sasl_ssl_has_no_secured_endpoint(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"DevKafka\(sasl_ssl=True\)"):
        DevKafka(tmp_path, libs=tmp_path).client_security()


async def test_a_host_that_cannot_be_found_is_said_so_not_blamed_on_the_protocol() -> None:
    problem = await connection_problem("nohost.invalid:9092", PLAINTEXT, timeout_s=5)
    assert problem is not None
    assert problem.startswith("the host 'nohost.invalid' cannot be found"), problem
    assert "security protocol" not in problem
