"""A DSN's scheme says whether its queries go over TLS, whatever the port: clickhouse-connect
alone chooses by the port (TLS on 443 and 8443, plain HTTP elsewhere)."""

from __future__ import annotations

import socket
import threading

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from consumers.storage.clickhouse import connect

TLS_HANDSHAKE = 0x16
"""The first byte a TLS client sends: the record type of its ClientHello."""


def _first_byte_sent(scheme: str, port: int = 0) -> int:
    """The first byte ``connect`` sends to a listener that hangs up on every connection."""
    try:
        listener = socket.create_server(("127.0.0.1", port))
    except OSError as busy:
        pytest.skip(f"port {port} is taken: {busy}")
    received: list[bytes] = []

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: the client gave up
            with conn:
                received.append(conn.recv(1))

    threading.Thread(target=hang_up, daemon=True).start()
    with pytest.raises(OperationalError):
        connect(f"{scheme}://127.0.0.1:{listener.getsockname()[1]}", "tls_check")
    listener.close()
    return received[0][0]


@pytest.mark.timeout(60)
def test_an_https_dsn_on_any_port_speaks_tls() -> None:
    assert _first_byte_sent("https") == TLS_HANDSHAKE


@pytest.mark.timeout(60)
def test_an_http_dsn_speaks_plain_http_even_on_the_tls_port() -> None:
    assert bytes([_first_byte_sent("http", 8443)]) in (b"G", b"P")
