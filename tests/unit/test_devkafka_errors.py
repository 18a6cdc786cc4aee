from __future__ import annotations

from pathlib import Path

import pytest

from tstore.devkafka import DevKafka, MissingToolError, resolve_jars


def test_missing_java_says_what_to_install_and_offers_compose(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError) as caught:
        DevKafka(libs=tmp_path)
    message = str(caught.value)
    assert "`java` was not found" in message
    assert "apt-get install openjdk-17-jre-headless" in message
    assert "docker-compose.yml" in message


def test_missing_maven_is_reported_only_when_jars_must_be_fetched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match="apt-get install maven"):
        resolve_jars(tmp_path / "empty-cache")
    cached = tmp_path / "cache" / "kafka-4.3.1" / "libs"
    cached.mkdir(parents=True)
    assert resolve_jars(tmp_path / "cache") == cached
