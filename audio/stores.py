"""Where audio chunks are kept: a local folder or a bucket of S3, Google Cloud Storage or Azure.

A store is named by a URL (``file:///abs/dir``, a plain path, ``s3://bucket/prefix``,
``gs://bucket/prefix``, ``az://container/prefix``) and every chunk by the URL of its object, the
``uri`` its ``ChunkReady`` carries. obstore is the one client for all of them; credentials and
endpoints come from the variables each cloud's own tools read (``AWS_*``, ``GOOGLE_*``,
``AZURE_*``), never from the URL, so a URL can be logged and stored in events.

Readers fetch byte ranges, never whole objects: a clip of two seconds costs about two seconds
of audio from a thirty-second chunk, wherever it lies.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, unquote, urlsplit

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import AzureStore, GCSStore, LocalStore, ObjectStore, S3Store

if TYPE_CHECKING:
    from obstore.store import RetryConfig

_CLOUD_SCHEMES = ("s3", "gs", "az")
SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_BEARER_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_TOKEN",
)
"""The variables obstore reads whose values are credentials, for the log redactor."""
_RETRY: RetryConfig = {"max_retries": 3, "retry_timeout": timedelta(seconds=20)}
"""A store out of reach fails a read within seconds, not after obstore's default of ten retries
over three minutes: a caller waiting for a clip is better told."""


class ChunkStoreUrlError(ValueError):
    """A chunk store URL that names no store this project can open."""


class ChunkError(Exception):
    """A chunk's object could not be read or written; says which and why, never as a raw
    obstore error, so callers need know only these classes."""

    failed = "failed"

    def __init__(self, uri: str, why: str) -> None:
        super().__init__(f"chunk {uri} {self.failed}: {why}")
        self.uri = uri
        self.why = why


class ChunkUnavailableError(ChunkError):
    """Missing, shorter than asked, or its store out of reach."""

    failed = "cannot be read"


class ChunkWriteError(ChunkError):
    """Its store out of reach, access refused, or the disk full."""

    failed = "could not be written"


@dataclass(frozen=True)
class StoredChunk:
    uri: str
    byte_size: int
    sha256: str
    """Hex digest of the whole object, as ``ChunkReady`` carries it."""


@dataclass(frozen=True)
class _Location:
    """A place in one store: ``bucket`` is empty for the local filesystem, whose ``path`` is
    then absolute without its leading slash (obstore's ``LocalStore`` at ``/`` takes it so)."""

    scheme: str
    bucket: str
    path: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bucket}/{quote(self.path)}"

    def child(self, key: str) -> _Location:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts) or "\\" in key:
            raise ValueError(
                f"chunk key {key!r}: a relative path of non-empty names, without '.', '..' "
                "or backslashes"
            )
        return _Location(self.scheme, self.bucket, "/".join([*self._parts(), *parts]))

    def _parts(self) -> list[str]:
        return [p for p in self.path.split("/") if p]


def _parse(url: str) -> _Location:
    """Where ``url`` points; a plain path is a local folder, made absolute."""
    parts = urlsplit(url)
    if not parts.scheme:
        if not url.strip():
            raise ChunkStoreUrlError("an empty chunk store URL: use a folder or a bucket's URL")
        return _Location("file", "", str(Path(url).resolve()).lstrip("/"))
    scheme = parts.scheme.lower()
    if scheme not in ("file", *_CLOUD_SCHEMES):
        raise ChunkStoreUrlError(
            f"{url!r}: unknown scheme {parts.scheme!r}; use file:///abs/dir (or a plain path), "
            "s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
        )
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ChunkStoreUrlError(
            f"{_without_userinfo(url)!r}: credentials and options come from the environment "
            "(AWS_*, GOOGLE_*, AZURE_*), not from the URL"
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ChunkStoreUrlError(f"{url!r}: a file URL names an absolute local path")
        return _Location("file", "", unquote(parts.path).strip("/"))
    if not parts.netloc:
        raise ChunkStoreUrlError(f"{url!r}: names no bucket (or container)")
    return _Location(scheme, parts.netloc, unquote(parts.path).strip("/"))


def chunk_store_url(url: str) -> str:
    """The canonical URL of the store ``url`` names (a plain path becomes an absolute
    ``file://`` URL), checked without reaching the store; raises ``ChunkStoreUrlError``."""
    return _parse(url).url


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="").geturl()


def _open_store(location: _Location) -> ObjectStore:
    """A store for the whole bucket (or the whole filesystem): one serves every prefix in it."""
    if location.scheme == "s3":
        return S3Store(location.bucket, retry_config=_RETRY)
    if location.scheme == "gs":
        return GCSStore(location.bucket, retry_config=_RETRY)
    if location.scheme == "az":
        return AzureStore(location.bucket, retry_config=_RETRY)
    return LocalStore("/")


def _reason(error: Exception) -> str:
    """obstore's first line says what failed; the rest is a debug dump."""
    return (str(error).splitlines() or [type(error).__name__])[0][:400]


class ChunkStore:
    """Writes chunks under the store's URL; ``put`` blocks, so producers call it off their
    event loop (``asyncio.to_thread``)."""

    def __init__(self, url: str) -> None:
        self._root = _parse(url)
        self.url = self._root.url
        try:
            self._store = _open_store(self._root)
        except BaseError as exc:
            raise ChunkStoreUrlError(f"{url!r}: {_reason(exc)}") from None

    def put(self, key: str, data: bytes) -> StoredChunk:
        """Store ``data`` under ``key`` (a relative path) and say where it is; raises
        ``ChunkWriteError`` if it cannot."""
        location = self._root.child(key)
        try:
            if location.scheme == "file":
                _write_whole("/" + location.path, data)
            else:
                obstore.put(self._store, location.path, data)
        except (BaseError, OSError) as exc:
            raise ChunkWriteError(location.url, _reason(exc)) from None
        return StoredChunk(location.url, len(data), hashlib.sha256(data).hexdigest())


class ChunkWriter(Protocol):
    """What a producer needs of a store: ``ChunkStore`` is one, and a bot may bring its own."""

    def put(self, key: str, data: bytes) -> StoredChunk:
        """Store ``data`` under ``key`` (a relative path) and say where it is. May block."""
        ...


def open_chunk_store(url: str) -> ChunkStore:
    """The store ``url`` names (``TSTORE_CHUNK_STORE``); a bad URL raises ``ChunkStoreUrlError``."""
    return ChunkStore(url)


def _write_whole(name: str, data: bytes) -> None:
    """The file appears whole or not at all, even after a power loss: written beside its name,
    fsynced, then renamed. obstore's local put renames too, but does not fsync."""
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.tmp")
    with staged.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    staged.replace(path)


def _spans(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The non-empty ranges as sorted, disjoint spans: overlapping or touching ranges are
    fetched once, and nothing between two spans is fetched at all."""
    spans: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


class ChunkReader:
    """Reads byte ranges of chunks by their ``uri``, whichever store holds them.

    One obstore store per bucket (and one for the local filesystem), made on first use and
    shared by the threads that read; ``bytes_read`` counts what was fetched from the stores.
    """

    def __init__(self) -> None:
        self._stores: dict[tuple[str, str], ObjectStore] = {}
        self._lock = threading.Lock()
        self._bytes_read = 0

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    def read_object(self, uri: str) -> bytes:
        """The whole object: to index a recording already in a store (its length, digest and
        audio header), never to cut a clip."""
        location, store = self._locate(uri)
        try:
            data = bytes(obstore.get(store, location.path).bytes())
        except (FileNotFoundError, NotFoundError):
            raise ChunkUnavailableError(uri, "no such object") from None
        except (BaseError, OSError) as exc:
            raise ChunkUnavailableError(uri, _reason(exc)) from None
        with self._lock:
            self._bytes_read += len(data)
        return data

    def read_ranges(self, uri: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each half-open range ``[start, end)`` of the object at ``uri``.

        Raises ``ChunkUnavailableError`` when the object is missing, a range runs past its end
        or its store cannot be reached.
        """
        for start, end in ranges:
            if not 0 <= start <= end:
                raise ValueError(f"byte range [{start}, {end}): need 0 <= start <= end")
        location, store = self._locate(uri)
        spans = _spans(ranges)
        fetched = self._fetch(uri, store, location, spans)
        for (start, end), data in zip(spans, fetched, strict=True):
            if len(data) < end - start:
                raise ChunkUnavailableError(
                    uri,
                    f"range [{start}, {end}) runs past the object's end at byte "
                    f"{start + len(data)}",
                )
        return [_cut(spans, fetched, start, end) for start, end in ranges]

    def _locate(self, uri: str) -> tuple[_Location, ObjectStore]:
        try:
            location = _parse(uri)
        except ChunkStoreUrlError as exc:
            raise ChunkUnavailableError(uri, str(exc)) from None
        key = (location.scheme, location.bucket)
        with self._lock:
            store = self._stores.get(key)
            if store is None:
                try:
                    store = self._stores[key] = _open_store(location)
                except BaseError as exc:
                    raise ChunkUnavailableError(uri, _reason(exc)) from None
        return location, store

    def _fetch(
        self, uri: str, store: ObjectStore, location: _Location, spans: list[tuple[int, int]]
    ) -> list[memoryview]:
        """One call for all spans: one open file locally, parallel requests to a bucket, and
        ``coalesce=0`` so that obstore fetches no gap between them."""
        if not spans:
            return []
        try:
            fetched = obstore.get_ranges(
                store,
                location.path,
                starts=[start for start, _ in spans],
                ends=[end for _, end in spans],
                coalesce=0,
            )
        except (FileNotFoundError, NotFoundError):
            raise ChunkUnavailableError(uri, "no such object") from None
        except (BaseError, OSError) as exc:
            raise ChunkUnavailableError(uri, self._explain(store, location, spans, exc)) from None
        views = [memoryview(data) for data in fetched]
        with self._lock:
            self._bytes_read += sum(len(view) for view in views)
        return views

    @staticmethod
    def _explain(
        store: ObjectStore, location: _Location, spans: list[tuple[int, int]], error: Exception
    ) -> str:
        """A range that starts past the end fails as a bare 416 (or 'invalid range'); the
        object's size says which range it was."""
        try:
            size = obstore.head(store, location.path)["size"]
        except (BaseError, OSError):
            return _reason(error)
        beyond = [(start, end) for start, end in spans if end > size]
        if beyond:
            start, end = beyond[0]
            return f"range [{start}, {end}) runs past the object's end at byte {size}"
        return _reason(error)


def _cut(spans: list[tuple[int, int]], fetched: list[memoryview], start: int, end: int) -> bytes:
    """Range ``[start, end)`` out of the fetched span that holds it."""
    if start == end:
        return b""
    for (span_start, span_end), data in zip(spans, fetched, strict=True):
        if span_start <= start and end <= span_end:
            return data[start - span_start : end - span_start].tobytes()
    raise AssertionError(f"[{start}, {end}) lies in no fetched span")
