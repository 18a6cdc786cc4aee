"""ClickHouse through clickhouse-connect, embedded (chDB) or server, with the same SQL.

The DSN alone chooses the engine: ``chdb:///abs/path`` runs ClickHouse in this process,
``http://...`` talks to a server. Nothing below branches on which one it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from consumers.projections.transcripts import SourcePosition, TranscriptRow
from schemas import WordTiming

_CHDB = "chdb://"

TRANSCRIPTS_DDL = """
CREATE TABLE IF NOT EXISTS transcripts
(
    session_id String,
    turn_id String,
    bot_id LowCardinality(String),
    role Enum8('user' = 1, 'assistant' = 2),
    started_at DateTime64(6, 'UTC'),
    stopped_at Nullable(DateTime64(6, 'UTC')),
    duration_ms Nullable(Int64),
    text String,
    interrupted Bool,
    timed_out Bool,
    user_id Nullable(String),
    words Array(Tuple(text String, start Float64, end Float64)),
    complete Bool,
    seq UInt64,
    version UInt64,
    source_topic LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64,
    projected_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (session_id, turn_id)
"""

_ROW_FIELDS = [f.name for f in fields(TranscriptRow) if f.name != "source"]
_TRANSCRIPT_COLUMNS = [*_ROW_FIELDS, "source_topic", "source_partition", "source_offset"]


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


class TranscriptStore:
    """The transcripts table: migrating it, writing projected rows, reading a session back."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def migrate(self) -> None:
        self.client.command(TRANSCRIPTS_DDL)

    def insert(self, rows: list[TranscriptRow]) -> None:
        if rows:
            self.client.insert(
                "transcripts", [_row_values(r) for r in rows], column_names=_TRANSCRIPT_COLUMNS
            )

    def session(self, session_id: str) -> list[TranscriptRow]:
        """A session's turns in speaking order, each turn once whatever was inserted twice."""
        result = self.client.query(
            f"SELECT {', '.join(_TRANSCRIPT_COLUMNS)} FROM transcripts FINAL "
            "WHERE session_id = {session_id:String} ORDER BY started_at, seq",
            parameters={"session_id": session_id},
        )
        return [_row_from_values(values) for values in result.result_rows]


def _row_values(row: TranscriptRow) -> list[Any]:
    values = {name: getattr(row, name) for name in _ROW_FIELDS}
    values["words"] = [(w.text, w.start, w.end) for w in row.words]
    return [*values.values(), row.source.topic, row.source.partition, row.source.offset]


def _row_from_values(values: Sequence[Any]) -> TranscriptRow:
    named = dict(zip(_TRANSCRIPT_COLUMNS, values, strict=True))
    source = SourcePosition(
        named.pop("source_topic"), named.pop("source_partition"), named.pop("source_offset")
    )
    named["words"] = tuple(WordTiming(**word) for word in named["words"])
    named["started_at"] = _utc(named["started_at"])
    named["stopped_at"] = named["stopped_at"] and _utc(named["stopped_at"])
    return TranscriptRow(**named, source=source)


def _utc(value: datetime) -> datetime:
    """chDB and the HTTP client may hand back naive datetimes for a UTC column."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
