"""Shared fixtures: one real Kafka broker and one embedded ClickHouse path per test session.

Tests isolate themselves by topic prefix and database name, never by a second data path (chDB
allows one per process), and by a second broker (``own_broker``) only to break it.
``TSTORE_TEST_KAFKA_BOOTSTRAP`` points the suite at an already running broker instead of
starting one. The object storage servers (s3proxy, fake-gcs-server, Azurite) also run once per
session, each test in a bucket of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import pytest_asyncio
from clickhouse_connect.driver.client import Client
from hypothesis import settings

from audio.stores import ChunkWriter, StoredChunk, chunk_store_url, open_chunk_store
from consumers.storage.clickhouse import connect
from consumers.topics_admin import ensure_topics
from schemas import Topics
from schemas.registry import SCHEMA_DIR
from tstore.devazure import DevAzure
from tstore.devgcs import DevGcs
from tstore.devkafka import DevKafka
from tstore.devkafka.broker import free_port
from tstore.devs3 import DevS3
from tstore.devserver import ObjectServer

TEST_PARTITIONS = 3

settings.register_profile("untimed", deadline=None)
settings.load_profile("untimed")
"""Hypothesis fails an example that runs past 200 ms by default: a timed test, which a busy
machine fails (a cursor's round trip did, beside a browser test). Speed is the benchmarks'."""


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


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[DevGcs]:
    """A GCS API server (fake-gcs-server) for the session; tests take a bucket of their own."""
    with DevGcs() as server:
        yield server


@pytest.fixture(scope="session")
def azurite() -> Iterator[DevAzure]:
    """An Azure Blob API server (Azurite) for the session; tests take a container of their own."""
    with DevAzure() as server:
        yield server


_CLOUD_VARIABLES = {"s3": ("AWS_",), "gs": ("GOOGLE_",), "az": ("AZURE_", "AZURITE_")}


def reach(server: ObjectServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the variables that reach ``server``, and no others of its cloud: a profile, token
    or endpoint of the machine's would be used too."""
    prefixes = _CLOUD_VARIABLES[server.scheme]
    for name in [name for name in os.environ if name.startswith(prefixes)]:
        monkeypatch.delenv(name)
    for name, value in server.client_env().items():
        monkeypatch.setenv(name, value)


def bucket_url(server: ObjectServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A chunk store URL in a fresh bucket of ``server``, reached from the environment."""
    reach(server, monkeypatch)
    bucket = server.create_bucket(f"chunks-{uuid.uuid4().hex[:12]}")
    return f"{server.scheme}://{bucket}/calls"


@pytest.fixture
def s3_chunk_store_url(s3proxy: DevS3, monkeypatch: pytest.MonkeyPatch) -> str:
    return bucket_url(s3proxy, monkeypatch)


@pytest.fixture
def gcs_chunk_store_url(fake_gcs: DevGcs, monkeypatch: pytest.MonkeyPatch) -> str:
    return bucket_url(fake_gcs, monkeypatch)


@pytest.fixture
def azure_chunk_store_url(azurite: DevAzure, monkeypatch: pytest.MonkeyPatch) -> str:
    return bucket_url(azurite, monkeypatch)


@dataclass(frozen=True)
class UploadingWriter:
    """A ``ChunkWriter`` that stores chunks through ``server``'s own API, not obstore, under
    the uri ``ChunkStore.put`` would give them: how chunks reach fake-gcs-server, which cannot
    take obstore's writes (``tstore.devgcs``), so that everything else is tested on it."""

    server: ObjectServer
    url: str

    def put(self, key: str, data: bytes) -> StoredChunk:
        root = chunk_store_url(self.url).rstrip("/")
        bucket, _, prefix = root.split("://", 1)[1].partition("/")
        self.server.upload(bucket, "/".join(p for p in (unquote(prefix), key) if p), data)
        return StoredChunk(f"{root}/{quote(key)}", len(data), hashlib.sha256(data).hexdigest())


def chunk_writer(request: pytest.FixtureRequest, store: str) -> tuple[str, ChunkWriter]:
    """The URL of a fresh chunk store of ``store`` (``local``, ``s3proxy``, ``gcs``,
    ``azurite``) and what writes chunks into it: the store itself, or on fake-gcs-server an
    ``UploadingWriter``."""
    if store == "local":
        url = request.getfixturevalue("tmp_path").joinpath("chunks").as_uri()
    else:
        url = request.getfixturevalue(_URL_FIXTURES[store])
    if store == "gcs":
        return url, UploadingWriter(request.getfixturevalue("fake_gcs"), url)
    return url, open_chunk_store(url)


_URL_FIXTURES = {
    "s3proxy": "s3_chunk_store_url",
    "gcs": "gcs_chunk_store_url",
    "azurite": "azure_chunk_store_url",
}


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
