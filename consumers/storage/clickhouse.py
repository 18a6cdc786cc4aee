"""ClickHouse through clickhouse-connect, embedded (chDB) or server, with the same SQL.

The DSN alone chooses the engine: ``chdb:///abs/path`` runs ClickHouse in this process,
``http://...`` talks to a server. Nothing below branches on which one it is.
"""

from __future__ import annotations

import os
import re
import socket
import zlib
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import urlsplit

import clickhouse_connect
import polars as pl
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from consumers.projections.audio_chunks import ChunkRow
from consumers.projections.session_events import DECLARED, DeclaredTrack, SessionEventRow
from consumers.projections.source import SOURCE_COLUMNS, SourcePosition, columns_of
from consumers.projections.transcripts import TranscriptRow
from consumers.storage.generations import Generations, as_utc
from consumers.storage.migrations import migrate
from schemas import WordTiming

EMBEDDED = "chdb://"
"""The scheme of a DSN naming the embedded engine, followed by its data path."""


R = TypeVar("R", bound=NamedTuple)
"""A projection row: a named tuple whose last field, ``source``, says where its event was read."""


def normalize_dsn(dsn: str) -> str:
    """Make an embedded DSN absolute: ``chdb://data/x`` would otherwise read as database "x"."""
    if not dsn.startswith(EMBEDDED):
        return dsn
    path = dsn.removeprefix(EMBEDDED)
    if not path:
        raise ValueError("an embedded DSN needs a data path: chdb:///absolute/path")
    return EMBEDDED + str(Path(path).resolve())


def embedded_path(dsn: str) -> Path | None:
    """The data path of an embedded engine's DSN; None for a server, which owns its own."""
    return Path(dsn.removeprefix(EMBEDDED)) if dsn.startswith(EMBEDDED) else None


class StoreUnavailableError(RuntimeError):
    """The store cannot be opened; the message says why, and what to do about it."""


def shown_dsn(dsn: str) -> str:
    """The DSN without its password, fit for a message or a log line."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)


def connect(dsn: str, database: str, settings: dict[str, Any] | None = None) -> Client:
    """A client bound to ``database``, which is created if it does not exist yet; ``settings``
    apply to each of its queries."""
    dsn = normalize_dsn(dsn)
    if (path := embedded_path(dsn)) is not None:
        path.mkdir(parents=True, exist_ok=True)
    # clickhouse-connect reads no scheme from a DSN: it chose TLS by the port (443 and 8443).
    interface = dsn.split("://", 1)[0] if dsn.startswith(("http://", "https://")) else None
    bootstrap = clickhouse_connect.get_client(dsn=dsn, interface=interface)
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    return clickhouse_connect.get_client(
        dsn=dsn, database=database, settings=settings or {}, interface=interface
    )


class RowTable(Generic[R]):
    """A projection's row type mapped onto its table: the columns are the row's fields, with
    ``source`` spread over three columns; ``from_db`` converts the fields read back that need it."""

    def __init__(
        self,
        name: str,
        row_type: type[R],
        *,
        key: tuple[str, ...],
        version: str,
        from_db: dict[str, Callable[[Any], Any]] | None = None,
        optional: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.table = f"{name}_generations"
        self.key = key
        self.version = version
        self._make: Callable[..., R] = row_type
        self.columns = columns_of(row_type)
        self.optional = optional
        """Columns a frame may leave out: the table fills them with their defaults (frames
        written before the columns were added, as the benchmarks' do)."""
        self._from_db = from_db or {}

    def written(self, rows: pl.DataFrame) -> list[str]:
        """The columns of ``rows`` an insert writes."""
        return [c for c in self.columns if c not in self.optional or c in rows.columns]

    def digests(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Per row: session, key, version and a digest of key and version that ``digest_sql``
        computes the same way in SQL."""
        identity = rows.select(
            pl.concat_str(
                [pl.col(c).cast(pl.String) for c in (*self.key, self.version)], separator="|"
            )
        ).to_series()
        return rows.select(
            list(dict.fromkeys(("session_id", *self.key, self.version)))
        ).with_columns(digest=pl.Series([zlib.crc32(i.encode()) for i in identity], dtype=pl.Int64))

    def digest_sql(self) -> str:
        parts = ", '|', ".join(f"toString({c})" for c in (*self.key, self.version))
        return f"CRC32(concat({parts}))"

    def row(self, values: Sequence[Any]) -> R:
        named = dict(zip(self.columns, values, strict=True))
        source = SourcePosition(*(named.pop(c) for c in SOURCE_COLUMNS))
        decoded = {k: self._from_db.get(k, as_utc)(v) for k, v in named.items()}
        return self._make(**decoded, source=source)


TRANSCRIPTS = RowTable(
    "transcripts",
    TranscriptRow,
    key=("session_id", "turn_id"),
    version="version",
    from_db={"words": lambda words: tuple(WordTiming(**w) for w in words)},
)
AUDIO_CHUNKS = RowTable(
    "audio_chunks",
    ChunkRow,
    key=("session_id", "track", "chunk_seq"),
    version="seq",
    from_db={"sha256": lambda digest: digest.decode("ascii")},  # FixedString reads as bytes
)
SESSION_EVENTS = RowTable(
    "session_events",
    SessionEventRow,
    key=("session_id", "seq"),
    version="seq",
    from_db={
        "declared_tracks": lambda tracks: tuple(DeclaredTrack(**t) for t in tracks),
        "declared_events": lambda count: count,
    },
    optional=DECLARED,
)
TABLES: dict[str, RowTable[Any]] = {t.name: t for t in (TRANSCRIPTS, AUDIO_CHUNKS, SESSION_EVENTS)}


class Store:
    """The read model: migrating it, writing projected rows, and the reads services need."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.generations = Generations(client)
        self._dictionary_columns: dict[str, frozenset[str]] = {}

    def migrate(self) -> None:
        migrate(self.client)
        self.generations.ensure_first()

    @cached_property
    def identity(self) -> str:
        """The store's own id, made when it was created (empty for a store that held rows
        before stores had one): its consumer groups carry it."""
        ((found,),) = self.client.query("SELECT min(store_id) FROM store_identity").result_rows
        return str(found)

    def insert(
        self,
        table: str,
        rows: pl.DataFrame,
        *,
        generation: int,
        dedup_token: str | None = None,
        hurry: bool = False,
    ) -> None:
        """Write a frame of rows into a generation in one insert, in Arrow format; a token seen
        recently makes ClickHouse skip the insert. ``hurry``: at the engine's normal priority,
        whatever the connection's (``tstore.components.writing_behind_reads``).

        Duplicates are not merged away on insert (``optimize_on_insert``, a third of the
        insert's cost): every read goes through ``FINAL``, which merges them anyway. Columns
        the table keeps as dictionaries go as Arrow dictionaries, so ClickHouse reads each
        distinct value once instead of once per row (half the parsing of ``session_events``).

        A batch refused by its token still goes through the materialized views on the table
        (the engine does so; ``tests/integration/test_session_summaries.py`` holds it to it):
        the crash it is replayed after may have come between the table's part and a view's,
        and the views keep sets and maxima, which take the same rows twice without change."""
        if rows.is_empty():
            return
        spec = TABLES[table]
        settings: dict[str, Any] = {"optimize_on_insert": 0}
        if dedup_token:
            settings["insert_deduplication_token"] = dedup_token
        if hurry:
            settings["os_thread_priority"] = 0
        dictionaries = self._dictionaries(spec.table)
        arrow = rows.select(
            pl.lit(generation, pl.UInt32).alias("generation"),
            *(
                pl.col(c).cast(pl.Categorical) if c in dictionaries else c
                for c in spec.written(rows)
            ),
        )
        # one chunk: an Arrow file holds one dictionary per column
        self.client.insert_arrow(spec.table, arrow.rechunk().to_arrow(), settings=settings)

    def _dictionaries(self, table: str) -> frozenset[str]:
        """The table's LowCardinality and Enum columns, as the server describes them."""
        known = self._dictionary_columns.get(table)
        if known is None:
            result = self.client.query(
                "SELECT name FROM system.columns WHERE database = currentDatabase() "
                "AND table = {t:String} AND match(type, '^(LowCardinality|Enum)')",
                parameters={"t": table},
            )
            known = self._dictionary_columns[table] = frozenset(r[0] for r in result.result_rows)
        return known

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


def open_store(dsn: str, database: str, settings: dict[str, Any] | None = None) -> Store:
    """The store, migrated, with ``settings`` on each of its queries; ``StoreUnavailableError``
    in one line when it cannot be opened."""
    dsn = normalize_dsn(dsn)
    holder = embedded_holder(dsn)
    if holder is not None:
        raise StoreUnavailableError(
            f"the embedded store {dsn} is held by process {holder} (a running `tstore serve` "
            "or `tstore project`): ask that process over HTTP (TSTORE_HTTP_PORT), or stop it"
        )
    try:
        store = Store(connect(dsn, database, settings))
        store.migrate()
    except ClickHouseError as exc:
        raise StoreUnavailableError(f"cannot open the store{_why(dsn, exc)}") from None
    return store


def _why(dsn: str, error: ClickHouseError) -> str:
    """A server out of reach said as much, not as urllib3's retries around the socket's error
    (with the query's id and the attempt's number); any other failure by its first line."""
    unreachable = _socket_error(error)
    if unreachable is not None:
        parts = urlsplit(dsn)
        server = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        return f": ClickHouse at {server} is unreachable ({unreachable})"
    text = str(error).strip()
    return f" {shown_dsn(dsn)}: {text.splitlines()[0] if text else type(error).__name__}"


def _socket_error(error: ClickHouseError) -> str | None:
    """Why no connection was made, if that is why ``error`` was raised: clickhouse-connect's
    error is caused by urllib3's, which holds the socket's as its ``reason`` or its cause (a
    TLS failure is an ``OSError`` too, but the server was reached)."""
    cause: object = error
    while isinstance(cause, BaseException):
        if isinstance(cause, ConnectionError | socket.gaierror | TimeoutError):
            return (cause.strerror or str(cause) or type(cause).__name__).lower()
        cause = cause.__cause__ or getattr(cause, "reason", None)
    return None


def embedded_holder(dsn: str) -> int | None:
    """The process holding an embedded store's data path, if another live one does.

    chDB writes its process id into ``status`` and locks the file while it runs; asking
    before opening spares the caller chDB's own error, printed to stderr as well."""
    path = embedded_path(dsn)
    if path is None:
        return None
    status = path / "status"
    try:
        found = re.search(r"^PID: (\d+)", status.read_text(), re.M)
    except OSError:
        return None
    pid = int(found.group(1)) if found else None
    if pid is None or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
