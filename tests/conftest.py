"""Shared fixtures: one real Kafka broker and one embedded ClickHouse path per test session.

Tests isolate themselves by topic prefix and database name, never by a second data path (chDB
allows one per process), and by a second broker (``own_broker``) only to break it.
``TSTORE_TEST_KAFKA_BOOTSTRAP`` points the suite at an already running broker instead of
starting one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from clickhouse_connect.driver.client import Client

from consumers.storage.clickhouse import connect
from consumers.topics_admin import ensure_topics
from schemas import Topics
from schemas.registry import SCHEMA_DIR
from tstore.devkafka import DevKafka
from tstore.devkafka.broker import free_port
from tstore.devs3 import DevS3

TEST_PARTITIONS = 3


@pytest.fixture
def schema_folder(tmp_path: Path) -> Path:
    """A copy of the published schemas, for a test to break."""
    folder = tmp_path / "avro"
    shutil.copytree(SCHEMA_DIR, folder)
    return folder


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("TSTORE_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    with DevKafka() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def s3proxy() -> Iterator[DevS3]:
    """A real S3 API server (s3proxy) for the session; tests take a bucket of their own."""
    with DevS3() as server:
        yield server


def reach_s3(server: DevS3, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the AWS_* variables that reach ``server``, and no others: a profile or session
    token of the machine's would be used too."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in server.client_env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3_chunk_store_url(s3proxy: DevS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """A chunk store URL in a fresh bucket of the session's s3proxy, reached from the
    environment."""
    reach_s3(s3proxy, monkeypatch)
    bucket = s3proxy.create_bucket(f"chunks-{uuid.uuid4().hex[:12]}")
    return f"s3://{bucket}/calls"


@pytest_asyncio.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[DevKafka]:
    """A broker of the test's own, for a test that stops, kills or freezes it; its log is in
    a folder that outlives a kill."""
    own = DevKafka(tmp_path / "kafka", port=free_port())
    await asyncio.to_thread(own.start)
    yield own
    await asyncio.to_thread(own.close)


@pytest.fixture(scope="session")
def clickhouse_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('clickhouse')}"


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def topics(kafka_bootstrap: str) -> AsyncIterator[Topics]:
    created = Topics(prefix=f"{unique_name('t')}.")
    await ensure_topics(kafka_bootstrap, created, partitions=TEST_PARTITIONS)
    yield created


@pytest.fixture
def database(clickhouse_dsn: str) -> Iterator[str]:
    name = unique_name("test")
    yield name
    connect(clickhouse_dsn, name).command(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def clickhouse(clickhouse_dsn: str, database: str) -> Client:
    return connect(clickhouse_dsn, database)
