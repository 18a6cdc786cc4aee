"""ClickHouse through clickhouse-connect, embedded (chDB) or server, with the same SQL.

The DSN alone chooses the engine: ``chdb:///abs/path`` runs ClickHouse in this process,
``http://...`` talks to a server. Nothing below branches on which one it is.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from consumers.projections.audio_chunks import ChunkRow
from consumers.projections.session_events import SessionEventRow
from consumers.projections.source import SourcePosition
from consumers.projections.transcripts import TranscriptRow
from consumers.storage.generations import Generations, as_utc
from consumers.storage.migrations import migrate
from schemas import WordTiming

_CHDB = "chdb://"
_SOURCE_COLUMNS = ["source_topic", "source_partition", "source_offset"]


R = TypeVar("R", bound=NamedTuple)
"""A projection row: a named tuple whose last field, ``source``, says where its event was read."""


def normalize_dsn(dsn: str) -> str:
    """Make an embedded DSN absolute: ``chdb://data/x`` would otherwise read as database "x"."""
    if not dsn.startswith(_CHDB):
        return dsn
    path = dsn.removeprefix(_CHDB)
    if not path:
        raise ValueError("an embedded DSN needs a data path: chdb:///absolute/path")
    return _CHDB + str(Path(path).resolve())


def connect(dsn: str, database: str) -> Client:
    """A client bound to ``database``, which is created if it does not exist yet."""
    dsn = normalize_dsn(dsn)
    if dsn.startswith(_CHDB):
        Path(dsn.removeprefix(_CHDB)).mkdir(parents=True, exist_ok=True)
    bootstrap = clickhouse_connect.get_client(dsn=dsn)
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    return clickhouse_connect.get_client(dsn=dsn, database=database)


class RowTable(Generic[R]):
    """A projection's row type mapped onto its table: the columns are the row's fields, with
    ``source`` spread over three columns; ``to_db``/``from_db`` convert the fields that need it."""

    def __init__(
        self,
        name: str,
        row_type: type[R],
        *,
        key: tuple[str, ...],
        version: str,
        to_db: dict[str, Callable[[Any], Any]] | None = None,
        from_db: dict[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.name = name
        self.table = f"{name}_generations"
        self.key = key
        self.version = version
        self.key_of = attrgetter(*key)
        self.version_of = attrgetter(version)
        self._digested = attrgetter(*key, version)
        self._make: Callable[..., R] = row_type
        *self._fields, last = row_type._fields
        if last != "source":
            raise TypeError(f"{row_type.__name__}: a row's last field must be its source")
        self.columns = [*self._fields, *_SOURCE_COLUMNS]
        self._to_db = to_db or {}
        self._from_db = from_db or {}

    def column_data(self, rows: Sequence[R]) -> list[Sequence[Any]]:
        """The rows as one sequence per column: clickhouse-connect's native insert input, which
        spares it transposing rows (that transposition cost more than the engine's insert)."""
        *values, sources = zip(*rows, strict=True)
        data: list[Sequence[Any]] = []
        for name, column in zip(self._fields, values, strict=True):
            convert = self._to_db.get(name)
            data.append(column if convert is None else [convert(v) for v in column])
        data.extend(zip(*sources, strict=True))
        return data

    def digest(self, row: R) -> int:
        """A row's identity and version as a number; ``digest_sql`` computes the same in SQL."""
        return zlib.crc32("|".join(map(str, self._digested(row))).encode())

    def digest_sql(self) -> str:
        parts = ", '|', ".join(f"toString({c})" for c in (*self.key, self.version))
        return f"CRC32(concat({parts}))"

    def row(self, values: Sequence[Any]) -> R:
        named = dict(zip(self.columns, values, strict=True))
        source = SourcePosition(*(named.pop(c) for c in _SOURCE_COLUMNS))
        decoded = {k: self._from_db.get(k, as_utc)(v) for k, v in named.items()}
        return self._make(**decoded, source=source)


TRANSCRIPTS = RowTable(
    "transcripts",
    TranscriptRow,
    key=("session_id", "turn_id"),
    version="version",
    to_db={"words": lambda words: [(w.text, w.start, w.end) for w in words]},
    from_db={"words": lambda words: tuple(WordTiming(**w) for w in words)},
)
AUDIO_CHUNKS = RowTable(
    "audio_chunks", ChunkRow, key=("session_id", "track", "chunk_seq"), version="seq"
)
SESSION_EVENTS = RowTable(
    "session_events", SessionEventRow, key=("session_id", "seq"), version="seq"
)
TABLES: dict[str, RowTable[Any]] = {t.name: t for t in (TRANSCRIPTS, AUDIO_CHUNKS, SESSION_EVENTS)}


class Store:
    """The read model: migrating it, writing projected rows, and the reads services need."""

    def __init__(self, client: Client) -> None:
        self.client = client

        self.generations = Generations(client)

    def migrate(self) -> None:
        migrate(self.client)
        self.generations.ensure_first()

    def insert(
        self,
        table: str,
        rows: Sequence[Any],
        *,
        generation: int,
        dedup_token: str | None = None,
    ) -> None:
        """Write rows into a generation in one insert; a token seen recently makes ClickHouse
        skip the insert."""
        if not rows:
            return
        spec = TABLES[table]
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        self.client.insert(
            spec.table,
            [[generation] * len(rows), *spec.column_data(rows)],
            column_names=["generation", *spec.columns],
            column_oriented=True,
            settings=settings,
        )

    def _select(self, spec: RowTable[R], where: str, order: str, **params: Any) -> list[R]:
        result = self.client.query(
            f"SELECT {', '.join(spec.columns)} FROM {spec.name} WHERE {where} ORDER BY {order}",
            parameters=params,
        )
        return [spec.row(values) for values in result.result_rows]

    def session(self, session_id: str) -> list[TranscriptRow]:
        """A session's turns in speaking order, each turn once whatever was inserted twice."""
        return self._select(
            TRANSCRIPTS, "session_id = {sid:String}", "started_at, seq", sid=session_id
        )

    def chunks(self, session_id: str) -> list[ChunkRow]:
        return self._select(
            AUDIO_CHUNKS, "session_id = {sid:String}", "track, chunk_seq", sid=session_id
        )

    def incomplete_sessions(self) -> list[tuple[str, int, int]]:
        """(session_id, events seen, events expected) of every session with holes in its seq."""
        result = self.client.query(
            "SELECT session_id, events, expected FROM session_completeness "
            "WHERE missing > 0 ORDER BY session_id"
        )
        return [(str(s), int(e), int(x)) for s, e, x in result.result_rows]

    def session_digests(self, table: str, generation: int) -> dict[str, tuple[int, int]]:
        """Per session of a generation's table: (rows, sum of row digests), duplicates once."""
        spec = TABLES[table]
        result = self.client.query(
            f"SELECT session_id, count(), sum({spec.digest_sql()}) FROM {spec.table} FINAL "
            "WHERE generation = {g:UInt32} GROUP BY session_id",
            parameters={"g": generation},
        )
        return {str(s): (int(n), int(d)) for s, n, d in result.result_rows}
