"""Events to bytes and back: single-object framing, Avro binary, pydantic validation.

Encoding always uses the latest schema version of the event's record. Decoding finds the writer
version by fingerprint and resolves it to the latest version (Avro schema resolution), so events
written by old producers read as today's models.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from pydantic import ValidationError

from schemas.bulk import BulkReader
from schemas.models import EVENT_MODELS, Event
from schemas.registry import SchemaRegistry, SchemaVersion
from schemas.single_object import HEADER_SIZE, FramingError, frame, unframe


class DecodeError(ValueError):
    """Bytes that cannot become an event. ``reason`` is a short machine-readable category."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class EventCodec:
    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry or SchemaRegistry.from_folder()
        self._models: Mapping[str, type[Event]] = {m.schema_name: m for m in EVENT_MODELS}
        missing = set(self._models) - set(self.registry.names())
        if missing:
            raise ValueError(f"models without a schema: {sorted(missing)}")
        self.bulk = BulkReader(
            self.registry, lambda writer, m: self.read_body(writer, m[HEADER_SIZE:])
        )
        """Reads many messages of one writer version at once, into columns."""

    def encode(self, event: Event) -> bytes:
        writer = self.registry.latest(event.schema_name)
        buffer = io.BytesIO()
        schemaless_writer(buffer, writer.parsed, event.model_dump())
        return frame(writer.fingerprint, buffer.getvalue())

    def decode(self, message: bytes) -> Event:
        writer, body = self.writer_of(message)
        model = self.model_of(writer)
        try:
            return model.model_validate(self.read_body(writer, body))
        except ValidationError as exc:
            raise DecodeError("invalid", f"{writer.label}: {_describe(exc)}") from exc

    def writer_of(self, message: bytes) -> tuple[SchemaVersion, memoryview]:
        """The schema version a message was written with, and its body."""
        try:
            fp, body = unframe(message)
        except FramingError as exc:
            raise DecodeError("bad-framing", str(exc)) from exc
        writer = self.registry.by_fingerprint(fp)
        if writer is None:
            raise DecodeError(
                "unknown-fingerprint", f"no schema version has fingerprint {fp.hex()}"
            )
        return writer, body

    def model_of(self, writer: SchemaVersion) -> type[Event]:
        model = self._models.get(writer.name)
        if model is None:
            raise DecodeError("unknown-record", f"no model for record {writer.name}")
        return model

    def read_body(self, writer: SchemaVersion, body: bytes | memoryview) -> dict[str, Any]:
        """One body, resolved to the latest version of its record; ``DecodeError`` unless it is
        exactly one record of the writer version."""
        try:
            refusal = writer.wire.refusal(body)
            if refusal is not None:
                raise DecodeError("bad-avro", f"{writer.label}: {refusal}")
            record = schemaless_reader(
                io.BytesIO(body), writer.parsed, self.registry.latest(writer.name).parsed
            )
        except DecodeError:
            raise
        except Exception as exc:  # fastavro raises many unrelated types on corrupt bodies
            raise DecodeError("bad-avro", f"{writer.label}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(record, dict):
            raise DecodeError("bad-avro", f"{writer.label}: body is not a record")
        return record


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<event>'}: {err['msg']}" for err in exc.errors()
    )
