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

import polars as pl

from schemas.wire import NOT_CANONICAL

_LONGS = {"int", "long"}
_EPOCH_UNITS = {"timestamp-micros": "us", "timestamp-millis": "ms", "date": "d"}
_FIXED_SIZES = {"float": 4, "double": 8, "null": 0, "boolean": 1}
_MAX_VARINT = 10


def _varint_length(value: pl.Expr) -> pl.Expr:
    """Bytes of a long's zigzag varint: one more for each 7 bits past the first 6 (plus sign)."""
    length = pl.lit(1, pl.Int64)
    for k in range(1, _MAX_VARINT):
        bound = 2 ** (7 * k - 1)
        length = length + ((value >= bound) | (value < -bound)).cast(pl.Int64)
    return length


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
    """The check for one schema, its expressions built once: building them costs more than
    running them on a batch."""

    def __init__(self, schema: dict[str, Any], offset: int) -> None:
        """``offset``: where the body starts in each message."""
        fields = schema["fields"]
        unions = [i for i, spec in enumerate(fields) if _kind(spec["type"]) == "union"]
        self._sizes = [
            *(
                _length(spec["type"], pl.col(spec["name"]), False).alias(f"__size{i}")
                for i, spec in enumerate(fields)
            ),
            *(pl.col(fields[i]["name"]).is_null().alias(f"__null{i}") for i in unions),
        ]
        message = pl.col("__message")
        wrong: list[pl.Expr] = []
        for i, spec in enumerate(fields):
            before = [pl.col(f"__size{j}") for j in range(i)]
            at = offset + pl.sum_horizontal(before) if before else pl.lit(offset)
            if i in unions:
                index = pl.when(pl.col(f"__null{i}")).then(0).otherwise(2)
                wrong.append(message.bin.get(at, null_on_oob=True) != index)
            elif _kind(spec["type"]) in _LONGS:
                last = message.bin.get(at + _MAX_VARINT - 1, null_on_oob=True)
                wrong.append((pl.col(f"__size{i}") == _MAX_VARINT) & (last != 1))
        total = offset + pl.sum_horizontal(pl.col(f"__size{i}") for i in range(len(fields)))
        wrong.append(message.bin.size() != total)
        self._broken = (
            pl.when(pl.any_horizontal(w.fill_null(True) for w in wrong))
            .then(pl.lit(NOT_CANONICAL))
            .alias("broken")
        )

    def breaks(self, frame: pl.DataFrame, messages: Sequence[bytes]) -> pl.Series:
        """Per row of ``frame`` (read from ``messages``), ``NOT_CANONICAL`` where the message is
        not the canonical encoding of the row, else null.

        Field sizes become columns first and offsets sums of them: an offset written as one
        expression over the sizes before it grows with the square of the field count, and
        polars then spends longer planning it than running it."""
        sizes = frame.select(self._sizes)
        message = pl.Series("__message", messages, dtype=pl.Binary)
        return sizes.with_columns(message).select(self._broken).to_series()
