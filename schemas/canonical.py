"""Whether each message is the canonical encoding of the row polars read from it, in columns.

Re-encoding row by row would cost what reading in columns saves. The canonical length of a row
is an expression over its columns, though (a varint's length follows from its value, a
string's from its byte count), and a message of another length holds an overlong number, an
array split in blocks or some other second spelling. Two spellings keep the length: a union
index naming no branch (polars reads any index but 0 as the value) and the last byte of a
ten-byte varint (its high bits are cut off). Those bytes sit at offsets the same lengths give,
and are compared there.

Covered: the types the event schemas use. A union or number nested below the top level is
refused when the check is built, so a schema that needs more fails loudly, never silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from schemas.wire import NOT_CANONICAL

_LONGS = {"int", "long"}
_EPOCH_UNITS = {"timestamp-micros": "us", "timestamp-millis": "ms", "date": "d"}
_FIXED_SIZES = {"float": 4, "double": 8, "null": 0, "boolean": 1}
_MAX_VARINT = 10


def _varint_length(value: pl.Expr) -> pl.Expr:
    """Bytes of a long's zigzag varint: 7 bits a byte. The zigzag is built without overflow
    (the bitwise complement of a negative value is never negative)."""
    zigzag = (
        pl.when(value >= 0)
        .then(value.cast(pl.UInt64, strict=False) * 2)
        .otherwise((~value).cast(pl.UInt64, strict=False) * 2 + 1)
    )
    bits = 64 - (zigzag | 1).bitwise_leading_zeros().cast(pl.Int64)
    return (bits + 6) // 7


def _number(spec: Any, value: pl.Expr) -> pl.Expr:
    unit = spec.get("logicalType") if isinstance(spec, dict) else None
    if unit in _EPOCH_UNITS:
        return value.dt.epoch(_EPOCH_UNITS[unit])  # type: ignore[arg-type]
    return value


def _kind(spec: Any) -> str:
    if isinstance(spec, list):
        return "union"
    return str(spec.get("type") if isinstance(spec, dict) else spec)


def _length(spec: Any, value: pl.Expr, nested: bool) -> pl.Expr:
    kind = _kind(spec)
    if kind in _LONGS:
        if nested:
            raise TypeError(f"a number inside {spec} is not checked")
        return _varint_length(_number(spec, value))
    if kind in _FIXED_SIZES:
        return pl.lit(_FIXED_SIZES[kind], pl.Int64)
    if kind == "fixed":
        return pl.lit(spec["size"], pl.Int64)
    if kind in ("string", "bytes"):
        size = (value.str.len_bytes() if kind == "string" else value.bin.size()).cast(pl.Int64)
        return _varint_length(size) + size
    if kind == "record":
        parts = [_length(f["type"], value.struct.field(f["name"]), True) for f in spec["fields"]]
        return pl.sum_horizontal(parts) if parts else pl.lit(0, pl.Int64)
    if kind == "array":
        count = value.list.len().cast(pl.Int64)
        items = value.list.eval(_length(spec["items"], pl.element(), True)).list.sum()
        return pl.when(count == 0).then(1).otherwise(_varint_length(count) + items + 1)
    if kind == "union" and not nested and len(spec) == 2 and spec[0] == "null":
        return 1 + pl.when(value.is_null()).then(0).otherwise(_length(spec[1], value, True))
    raise TypeError(f"the canonical check does not cover {spec}")


class Canonical:
    """The check for one schema. Field sizes are one polars select; offsets and the bytes at
    them are numpy over the whole batch, since an offset written as a polars expression over
    the sizes before it grows with the square of the field count and polars then spends
    longer planning it than running it."""

    def __init__(self, schema: dict[str, Any], offset: int) -> None:
        """``offset``: where the body starts in each message."""
        fields = schema["fields"]
        self._offset = offset
        self._unions = [i for i, f in enumerate(fields) if _kind(f["type"]) == "union"]
        self._longs = [i for i, f in enumerate(fields) if _kind(f["type"]) in _LONGS]
        self._columns = [
            *(_length(f["type"], pl.col(f["name"]), False) for f in fields),
            *(pl.col(fields[i]["name"]).is_null().cast(pl.Int64) for i in self._unions),
        ]

    def breaks(self, frame: pl.DataFrame, messages: Sequence[bytes]) -> pl.Series:
        """Per row of ``frame`` (read from ``messages``), ``NOT_CANONICAL`` where the message is
        not the canonical encoding of the row, else null."""
        if not messages:
            return pl.Series("broken", [], dtype=pl.String)
        found = frame.select(c.alias(f"c{i}") for i, c in enumerate(self._columns)).to_numpy()
        width = found.shape[1] - len(self._unions)
        sizes, nulls = found[:, :width], found[:, width:]
        lengths = np.fromiter(map(len, messages), dtype=np.int64, count=len(messages))
        starts = np.cumsum(lengths) - lengths
        data = np.frombuffer(b"".join(messages), dtype=np.uint8)
        at = starts[:, None] + self._offset + np.cumsum(sizes, axis=1) - sizes
        wrong = sizes.sum(axis=1) + self._offset != lengths
        fits = ~wrong  # every offset of these rows lies inside their message
        for column, field in enumerate(self._unions):
            index = np.where(nulls[:, column] == 1, 0, 2)
            wrong[fits] |= data[at[fits, field]] != index[fits]
        for field in self._longs:
            tenth = fits & (sizes[:, field] == _MAX_VARINT)
            wrong[tenth] |= data[at[tenth, field] + _MAX_VARINT - 1] != 1
        flags = pl.Series("broken", wrong)
        return pl.select(pl.when(flags).then(pl.lit(NOT_CANONICAL)).alias("broken")).to_series()
