"""Where in the log an event was read: kept on every row so any row can be traced back."""

from __future__ import annotations

from typing import Any, NamedTuple

import polars as pl

SOURCE_COLUMNS = ("source_topic", "source_partition", "source_offset")
"""The columns a decoded frame and every projected frame carry for ``SourcePosition``."""

SOURCE_TYPES = {"source_topic": pl.String, "source_partition": pl.Int32, "source_offset": pl.Int64}


class SourcePosition(NamedTuple):
    topic: str
    partition: int
    offset: int


def columns_of(row_type: Any) -> list[str]:
    """A projection's columns: its row's fields (a named tuple), ``source`` spread over three."""
    *fields, source = row_type._fields
    if source != "source":
        raise TypeError(f"{row_type.__name__}: a row's last field must be its source")
    return [*fields, *SOURCE_COLUMNS]
