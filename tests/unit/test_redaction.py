"""No secret reaches a log line: given ones anywhere in an event, passwords and tokens by shape."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from tstore.logging import MASK, Redactor, configure_logging
from tstore.settings import Settings

WORD = re.compile(r"[0-9A-Za-z\u0080-\U0010ffff]+")
"""What the store's text index keeps as one token (ASCII non-alphanumerics split words)."""

# -- the log redactor --------------------------------------------------------------------------

secrets = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="*"),
    min_size=4,
    max_size=30,
)
words_around = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="*"), max_size=12
)


@st.composite
def nested_with(draw: st.DrawFn, secret: str) -> Any:
    """An event value with ``secret`` somewhere inside strings, however deep."""
    holding = st.builds(lambda a, b: f"{a}{secret}{b}", words_around, words_around)
    leaves = holding | words_around | st.integers() | st.none() | st.booleans()
    return draw(
        st.recursive(
            leaves,
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.lists(inner, max_size=3).map(tuple)
                | st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), inner, max_size=3)
            ),
            max_leaves=10,
        )
    )


def _strings(value: Any) -> Iterator[str]:
    """Every string value inside ``value`` (not the keys of its dicts)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


@given(st.data(), secrets)
def test_a_given_secret_is_masked_anywhere_in_an_event(data: st.DataObject, secret: str) -> None:
    event = {
        "event": data.draw(st.builds(lambda a, b: f"{a}{secret}{b}", words_around, words_around)),
        "detail": data.draw(nested_with(secret)),
        "error": RuntimeError(f"failed with {secret}"),
        "deep": {"a": [{"b": (data.draw(nested_with(secret)),)}]},
    }
    cleaned = Redactor([secret, ""])(None, "info", event)
    assert set(cleaned) == set(event)
    for text in _strings(cleaned):
        assert secret not in text
    assert MASK in cleaned["event"]


def test_the_redactor_keeps_what_holds_no_secret() -> None:
    event = {"event": "served", "count": 3, "items": ["a", ("b", None)], "ok": True}
    assert Redactor(["s3cret"])(None, "info", dict(event)) == event


def test_a_secret_in_a_nested_key_is_masked_too() -> None:
    """ "Anywhere" includes the keys of nested dicts: a mapping keyed by what a caller sent."""
    cleaned = Redactor(["tok-12345678"])(None, "info", {"seen": {"tok-12345678": 1}})
    assert "tok-12345678" not in json.dumps(cleaned)


hosts = st.from_regex(r"[a-z0-9.-]{1,20}(:[0-9]{1,5})?", fullmatch=True)
users = st.from_regex(r"[A-Za-z0-9._~%!$&'()+,;=-]{0,12}", fullmatch=True)
passwords = st.from_regex(r"[A-Za-z0-9._~%!$&'()*+,;=:-]{1,24}", fullmatch=True)
"""What RFC 3986 allows in a URL's userinfo (``@`` is written ``%40``)."""


@given(
    st.sampled_from(["http", "https", "clickhouse", "kafka+ssl"]),
    users,
    passwords,
    hosts,
    st.sampled_from(["", "/", "/db?x=1"]),
    words_around,
)
def test_a_password_in_a_url_is_masked_by_its_shape(
    scheme: str, user: str, password: str, host: str, rest: str, before: str
) -> None:
    assume("@" not in before and "bearer" not in before.lower())
    text = f"{before} {scheme}://{user}:{password}@{host}{rest} after"
    assert Redactor().mask(text) == f"{before} {scheme}://{user}:{MASK}@{host}{rest} after"


@given(
    st.sampled_from(["Bearer", "bearer", "BEARER"]),
    st.from_regex(r"[A-Za-z0-9._~+/-]+=*", fullmatch=True),
)
def test_a_bearer_token_is_masked_by_its_shape(word: str, token: str) -> None:
    text = f'{{"Authorization": "{word} {token}"}}'
    assert Redactor().mask(text) == f'{{"Authorization": "{word} {MASK}"}}'


@contextmanager
def _captured_stderr() -> Iterator[io.StringIO]:
    captured, before = io.StringIO(), sys.stderr
    sys.stderr = captured
    try:
        yield captured
    finally:
        sys.stderr = before


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_configured_logging_never_writes_the_secret(fmt: str) -> None:
    secret = "tok-Zq81s3cr3t"
    configure_logging(fmt, secrets=[secret])
    try:
        log = structlog.get_logger("test")
        with _captured_stderr() as captured:
            log.info("called", header=f"Bearer {secret}", nested={"k": [secret]})
            log.warning(f"token {secret} refused", dsn="http://u:pw9pw9pw9@h:8123/")
            try:
                raise RuntimeError(f"bad token {secret}")
            except RuntimeError:
                log.exception("failed", args=(secret,))
        written = captured.getvalue()
    finally:
        structlog.reset_defaults()
    assert written.count("\n") >= 3
    assert secret not in written
    assert "pw9pw9pw9" not in written
    assert "bad token" in written
    assert "RuntimeError" in written
    if fmt == "json":
        for line in written.splitlines():
            json.loads(line)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_logged_settings_error_shows_no_value_even_before_any_secret_is_known(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings that fail to validate cannot name their secrets, and pydantic's error quotes
    the values it checked: for a check of several settings, all of them, the token too."""
    token, password = "tok-Xy7Zw6Vu5", "pw-Qr4St3Uv2"
    monkeypatch.setenv("TSTORE_API_TOKEN", token)
    monkeypatch.setenv("TSTORE_CLICKHOUSE_DSN", f"https://u:{password}@ch:8443")
    monkeypatch.setenv("TSTORE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert token in str(raised.value)
    configure_logging(fmt)
    try:
        with _captured_stderr() as captured:
            try:
                raise raised.value
            except ValidationError as exc:
                structlog.get_logger("test").exception("settings_failed", error=exc)
                logging.getLogger("other").error("settings failed: %s", exc, exc_info=True)
        written = captured.getvalue()
    finally:
        structlog.reset_defaults()
    assert "settings_failed" in written
    assert "settings failed" in written
    assert "TSTORE_KAFKA_USERNAME" in written
    assert token not in written
    assert password not in written
