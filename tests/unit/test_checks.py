"""The projector's columnar path accepts exactly the bodies the models accept, with the same
values: the rules in ``schemas.checks`` are read off the models, and this holds them to it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

import pytest
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import event as target_event
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import DecodeError, EventCodec
from schemas.checks import checks, first_broken
from schemas.models import EARLIEST, EVENT_MODELS, LATEST, Event
from schemas.single_object import frame
from tests.events import chunk, turn_pair

CODEC = EventCodec()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS_EDGES = [
    int((datetime(1, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()) * 10**6,
    int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH).total_seconds()) * 10**6
    + 999_999,
    int((EARLIEST - _EPOCH).total_seconds()) * 10**6,
    int((LATEST - _EPOCH).total_seconds()) * 10**6,
]
_PATTERNED = {"sha256": r"^[0-9a-f]{64}$", "format": r"^[a-z0-9][a-z0-9.+-]{0,31}$"}
_LENGTHS = [0, 1, 35, 36, 64, 65, 256, 257, 4096, 4097, 200_000, 200_001]


def _strategy(name: str, avro: Any) -> st.SearchStrategy[Any]:
    """Values of an Avro type, crowded at the models' limits."""
    if isinstance(avro, list):
        return st.one_of(*(_strategy(name, branch) for branch in avro))
    if isinstance(avro, str):
        avro = {"type": avro}
    kind, logical = avro["type"], avro.get("logicalType")
    if kind == "null":
        return st.none()
    if logical == "uuid":
        return st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()))
    if logical == "timestamp-micros":
        edges = [e + d for e in _MICROS_EDGES for d in (-1, 0, 1)]
        return st.one_of(
            st.sampled_from(edges), st.integers(-(2**62), 2**62), st.integers(0, 10**6)
        )
    if kind == "string":
        limits = st.sampled_from(_LENGTHS).map(lambda n: "é" * n)
        pattern = _PATTERNED.get(name)
        extra = [st.from_regex(pattern)] if pattern else []
        return st.one_of(st.text(max_size=40), limits, *extra)
    if kind in ("int", "long"):
        bits = 31 if kind == "int" else 63
        near_limits = st.sampled_from(
            [-1, 0, 1, 32, 33, 999, 1_000, 768_000, 768_001, 2**40, 2**40 + 1]
        )
        return st.one_of(near_limits, st.integers(-(2**bits), 2**bits - 1))
    if kind == "double":
        return st.one_of(st.floats(), st.floats(min_value=-1, max_value=5))
    if kind == "boolean":
        return st.booleans()
    if kind == "enum":
        return st.sampled_from(avro["symbols"])
    if kind == "array":
        return st.lists(_strategy(name, avro["items"]), max_size=3)
    if kind == "record":
        return st.fixed_dictionaries(
            {f["name"]: _strategy(f["name"], f["type"]) for f in avro["fields"]}
        )
    raise AssertionError(f"no strategy for {avro}")


def _body(model: type[Event], record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, CODEC.registry.latest(model.schema_name).parsed, record)
    return out.getvalue()


def _message(model: type[Event], body: bytes) -> bytes:
    return frame(CODEC.registry.latest(model.schema_name).fingerprint, body)


def _one_by_one(model: type[Event], body: bytes) -> Event | None:
    writer = CODEC.registry.latest(model.schema_name)
    try:
        return model.model_validate(CODEC.read_body(writer, body))
    except (DecodeError, ValidationError):
        return None


def _columnar(model: type[Event], body: bytes) -> dict[str, Any] | None:
    columns = CODEC.bulk.read(CODEC.registry.latest(model.schema_name), [_message(model, body)])
    if columns.rejected or first_broken(columns.frame, checks(model))[0] is not None:
        return None
    return columns.frame.row(0, named=True)


def _changed(base: dict[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    return base | dict(changes)


def _records() -> Iterator[st.SearchStrategy[tuple[type[Event], dict[str, Any]]]]:
    """A valid event of each kind with up to two fields replaced by values near the limits."""
    for valid in (*turn_pair(), chunk()):
        model = type(valid)
        fields = CODEC.registry.latest(model.schema_name).raw["fields"]
        replacement = st.sampled_from(fields).flatmap(
            lambda f: st.tuples(st.just(f["name"]), _strategy(f["name"], f["type"]))
        )
        yield st.tuples(
            st.just(model),
            st.lists(replacement, max_size=2).map(partial(_changed, valid.model_dump())),
        )


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(*_records()))
def test_columns_accept_what_the_models_accept(drawn: tuple[type[Event], dict[str, Any]]) -> None:
    model, record = drawn
    body = _body(model, record)
    event, row = _one_by_one(model, body), _columnar(model, body)
    target_event("accepted" if event is not None else "refused")
    assert (event is None) == (row is None), (event, row)
    if event is not None and row is not None:
        expected = event.model_dump()
        expected["event_id"] = str(event.event_id)
        row["event_id"] = row["event_id"].lower()
        assert row == expected


@pytest.mark.parametrize("model", EVENT_MODELS)
def test_every_rule_of_a_model_becomes_a_check(model: type[Event]) -> None:
    described = " ".join(check.says for check in checks(model))
    assert "session_id is shorter than 1 characters" in described
    assert "producer.framework is longer than 64 characters" in described


def test_a_broken_row_says_which_rule() -> None:
    (model,) = [m for m in EVENT_MODELS if m.__name__ == "TurnStopped"]
    raw: dict[str, Any] = {
        "event_id": str(UUID(int=1)),
        "session_id": "s",
        "bot_id": "b",
        "seq": 1,
        "occurred_at": 0,
        "producer": {"framework": "f", "framework_version": "", "library_version": ""},
        "turn_id": "t",
        "role": "user",
        "started_at": 10,
        "stopped_at": 5,
        "text": "",
        "interrupted": False,
        "timed_out": False,
        "user_id": None,
        "language": None,
        "words": [{"text": "w", "start": 2.0, "end": 1.0}],
    }
    message = _message(model, _body(model, raw))
    columns = CODEC.bulk.read(CODEC.registry.latest(model.schema_name), [message]).frame
    assert first_broken(columns, checks(model)).to_list() == ["words[].end is before words[].start"]
