"""Certificates for the local broker's TLS listener, made with the JDK's ``keytool``.

A private CA signs the broker's certificate (for 127.0.0.1 and localhost); the broker reads
its key from a PKCS12 keystore, and Python clients check it against the CA exported as PEM.
Made once per folder and reused, so a restarted broker keeps its certificate.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

BROKER_NAMES = "ip:127.0.0.1,dns:localhost"
VALID_DAYS = "3650"


@dataclass(frozen=True)
class BrokerTls:
    folder: Path

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) that clients trust."""
        return self.folder / "ca.pem"

    @property
    def keystore(self) -> Path:
        """The broker's key and certificate chain (PKCS12)."""
        return self.folder / "broker.p12"

    @property
    def password(self) -> str:
        """Of the keystores (and the keys in them)."""
        return (self.folder / "store-password").read_text().strip()


def keytool_steps(tls: BrokerTls, password: str) -> list[list[str]]:
    """The ``keytool`` arguments, in order: the CA, the broker's key, its signed certificate,
    and the chain (CA, then broker) back into the broker's keystore."""
    folder = tls.folder
    ca, broker = str(folder / "ca.p12"), str(tls.keystore)
    csr, signed = str(folder / "broker.csr"), str(folder / "broker.pem")
    key = ["-keyalg", "EC", "-groupname", "secp256r1", "-validity", VALID_DAYS]
    san = ["-ext", f"SAN={BROKER_NAMES}"]
    serve = [*san, "-ext", "EKU=serverAuth", "-validity", VALID_DAYS]
    steps = [
        (ca, ["-genkeypair", "-alias", "ca", "-dname", "CN=tstore dev CA", "-ext", "bc:c", *key]),
        (ca, ["-exportcert", "-rfc", "-alias", "ca", "-file", str(tls.ca_file)]),
        (broker, ["-genkeypair", "-alias", "broker", "-dname", "CN=localhost", *key, *san]),
        (broker, ["-certreq", "-alias", "broker", "-file", csr]),
        (ca, ["-gencert", "-rfc", "-alias", "ca", "-infile", csr, "-outfile", signed, *serve]),
        (broker, ["-importcert", "-noprompt", "-alias", "ca", "-file", str(tls.ca_file)]),
        (broker, ["-importcert", "-alias", "broker", "-file", signed]),
    ]
    store = ["-storetype", "PKCS12", "-storepass", password]
    return [[*args, "-keystore", keystore, *store] for keystore, args in steps]


def broker_tls(folder: Path, keytool: str) -> BrokerTls:
    """The broker's certificates in ``folder``, made there on first use."""
    tls = BrokerTls(folder)
    marker = folder / "store-password"
    if marker.exists():  # written last
        return tls
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.iterdir():  # an interrupted run: start over
        leftover.unlink()
    password = secrets.token_hex(16)
    for step in keytool_steps(tls, password):
        done = subprocess.run([keytool, *step], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"keytool {step[0]} failed (exit {done.returncode}):\n"
                f"{(done.stdout + done.stderr)[-2000:]}"
            )
    marker.write_text(password)
    return tls
