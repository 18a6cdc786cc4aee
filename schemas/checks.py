"""The models' constraints, applied to whole columns of decoded events.

The pydantic models are the contract: producers validate against them one event at a time.
The projector decodes events into columns (``schemas.bulk``) and cannot afford a model per
event, so this module reads the same constraints off the models (field types, ``Field`` limits,
``Literal`` choices, nested models, ``in_order`` pairs) and turns them into polars expressions.
Nothing is restated by hand; a constraint it cannot express is refused when the checks are
built, so a new rule on a model can never be skipped silently. A property test holds the two
to the same verdict.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import annotated_types
import polars as pl
from pydantic import AfterValidator, AllowInfNan, AwareDatetime, BaseModel, Strict
from pydantic.fields import FieldInfo

from schemas.models import to_utc
from schemas.wire import CANONICAL_UUID

_INT64_MAX = 2**63 - 1
_DATETIME_US = (
    (datetime.min - datetime(1970, 1, 1)) // timedelta(microseconds=1),
    (datetime.max - datetime(1970, 1, 1)) // timedelta(microseconds=1),
)
"""The microseconds since the epoch a Python datetime can hold (years 1 to 9999)."""


@dataclass(frozen=True)
class Check:
    """A rule: ``broken`` is true on the rows that break it; ``says`` is why, for people."""

    broken: pl.Expr
    says: str


Column = Callable[[str], pl.Expr]


def checks(model: type[BaseModel]) -> list[Check]:
    """Every rule of ``model`` as a check over a frame whose columns are its fields."""
    return list(_model_checks(model, pl.col, ""))


def first_broken(frame: pl.DataFrame, rules: list[Check]) -> pl.Series:
    """Per row, what the first rule it breaks says, or null for a valid row."""
    if not rules:
        return pl.Series("broken", [None] * frame.height, dtype=pl.String)
    return frame.select(
        pl.coalesce(
            pl.when(rule.broken.fill_null(False)).then(pl.lit(rule.says)) for rule in rules
        ).alias("broken")
    ).to_series()


def _model_checks(model: type[BaseModel], column: Column, prefix: str) -> Iterator[Check]:
    for name, info in model.model_fields.items():
        yield from _field_checks(info, column(name), f"{prefix}{name}")
    for earlier, later in getattr(model, "in_order", ()):
        yield Check(column(later) < column(earlier), f"{prefix}{later} is before {prefix}{earlier}")


def _field_checks(info: FieldInfo, value: pl.Expr, name: str) -> Iterator[Check]:
    annotation = info.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        present = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(present) != 1:
            raise TypeError(f"{name}: checks cannot express the union {annotation}")
        inner = FieldInfo.from_annotation(present[0])
        inner.metadata = [*inner.metadata, *info.metadata]
        yield from _field_checks(inner, value, name)  # null passes: Avro allowed it
        return
    yield from _type_checks(annotation, value, name)
    for constraint in info.metadata:
        yield from _constraint_checks(constraint, value, name)


def _type_checks(annotation: object, value: pl.Expr, name: str) -> Iterator[Check]:
    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        yield Check(~value.is_in(choices), f"{name} must be one of {', '.join(choices)}")
    elif annotation is UUID:
        yield Check(~value.str.contains(CANONICAL_UUID), f"{name} is not a UUID")
    elif annotation in (AwareDatetime, datetime):
        low, high = _DATETIME_US
        micros = value.dt.epoch("us")
        yield Check((micros < low) | (micros > high), f"{name} is outside the years 1-9999")
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from _model_checks(annotation, value.struct.field, f"{name}.")
    elif typing.get_origin(annotation) is tuple:
        item, ellipsis = typing.get_args(annotation)
        if ellipsis is not Ellipsis or not issubclass(item, BaseModel):
            raise TypeError(f"{name}: checks cannot express {annotation}")
        for rule in _model_checks(item, pl.element().struct.field, f"{name}[]."):
            yield Check(value.list.eval(rule.broken).list.any(), rule.says)
    elif annotation not in (str, int, float, bool):
        raise TypeError(f"{name}: checks cannot express the type {annotation}")


def _constraint_checks(constraint: object, value: pl.Expr, name: str) -> Iterator[Check]:
    match constraint:
        case annotated_types.MinLen(min_length=n):
            yield Check(value.str.len_chars() < n, f"{name} is shorter than {n} characters")
        case annotated_types.MaxLen(max_length=n):
            yield Check(value.str.len_chars() > n, f"{name} is longer than {n} characters")
        case annotated_types.Ge(ge=int() | float() | datetime() as n):
            yield Check(value < n, f"{name} is less than {n}")
        case annotated_types.Gt(gt=int() | float() | datetime() as n):
            yield Check(value <= n, f"{name} is not greater than {n}")
        case annotated_types.Le(le=int() | float() | datetime() as n):
            yield Check(value > n, f"{name} is greater than {n}")
        case annotated_types.Lt(lt=int() as n) if n > _INT64_MAX:
            pass  # an Avro long is always below it
        case annotated_types.Lt(lt=int() | float() | datetime() as n):
            yield Check(value >= n, f"{name} is not less than {n}")
        case AllowInfNan(allow_inf_nan=False):
            yield Check(~value.is_finite(), f"{name} is not a finite number")
        case _ if type(constraint).__name__ == "_PydanticGeneralMetadata":
            yield from _pattern_checks(vars(constraint), value, name)
        case Strict():
            pass  # it refuses a value of another type, and a decoded column has its Avro type
        case AfterValidator(func=func) if func is to_utc:
            pass  # it converts to UTC, which decoded timestamps are, and refuses nothing
        case _:
            raise TypeError(f"{name}: checks cannot express {constraint!r}")


def _pattern_checks(settings: dict[str, object], value: pl.Expr, name: str) -> Iterator[Check]:
    """pydantic keeps ``Field(pattern=...)`` in a private metadata class, hence the name test."""
    for key, setting in settings.items():
        if key != "pattern" or not isinstance(setting, str):
            raise TypeError(f"{name}: checks cannot express {key}={setting!r}")
        yield Check(~value.str.contains(setting), f"{name} does not match {setting}")
