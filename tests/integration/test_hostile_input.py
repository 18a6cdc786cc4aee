"""What a misbehaving producer can put on the topics ends in the dead-letter topic, with why."""

from __future__ import annotations

import io
import os

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from clickhouse_connect.driver.client import Client
from fastavro import schemaless_writer

from consumers.projector import Projector
from consumers.storage.clickhouse import Store
from consumers.topics_admin import MAX_MESSAGE_BYTES
from schemas import EventCodec, Topics
from schemas.single_object import frame
from tests.conftest import unique_name
from tests.events import turn_pair

pytestmark = pytest.mark.integration

CODEC = EventCodec()


def _unvalidated(record: dict[str, object], schema_name: str) -> bytes:
    """Valid Avro of a record the pydantic model would refuse."""
    writer = CODEC.registry.latest(schema_name)
    body = io.BytesIO()
    schemaless_writer(body, writer.parsed, record)
    return frame(writer.fingerprint, body.getvalue())


def _hostile() -> dict[str, bytes]:
    _, stopped = turn_pair(session_id="evil")
    encoded = CODEC.encode(stopped)
    return {
        "random bytes": os.urandom(64),
        "truncated avro": encoded[: len(encoded) // 2],
        "unknown fingerprint": frame(b"\x01\x02\x03\x04\x05\x06\x07\x08", encoded[10:]),
        "wrong types": _unvalidated(stopped.model_dump() | {"seq": -7}, stopped.schema_name),
        "10 MB text": _unvalidated(
            stopped.model_dump() | {"text": "a" * 10_000_000}, stopped.schema_name
        ),
        "empty": b"",
    }


async def test_hostile_records_go_to_the_dead_letters_and_valid_ones_around_them_are_projected(
    kafka_bootstrap: str, topics: Topics, clickhouse: Client
) -> None:
    before = turn_pair(session_id="before")
    after = turn_pair(session_id="after")
    hostile = _hostile()
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=MAX_MESSAGE_BYTES)
    await raw.start()
    try:
        for event in before:
            await raw.send_and_wait(topics.turn_events, CODEC.encode(event), key=b"before")
        for value in hostile.values():
            await raw.send_and_wait(topics.turn_events, value, key=b"evil")
        for event in after:
            await raw.send_and_wait(topics.turn_events, CODEC.encode(event), key=b"after")
    finally:
        await raw.stop()

    store = Store(clickhouse)
    async with Projector(
        bootstrap=kafka_bootstrap, topics=topics, group_id=unique_name("g"), store=store
    ) as projector:
        await projector.catch_up()
    assert projector.stats.rejected == len(hostile)
    assert [t.text for t in store.session("before")] == ["Where is my order?"]
    assert [t.text for t in store.session("after")] == ["Where is my order?"]
    assert store.session("evil") == []

    letters = AIOKafkaConsumer(
        topics.dead_letters,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
    )
    await letters.start()
    try:
        got: list[ConsumerRecord[bytes, bytes]] = []
        while len(got) < len(hostile):
            for records in (await letters.getmany(timeout_ms=5000)).values():
                got += records
    finally:
        await letters.stop()
    reasons = sorted(dict(r.headers)["tstore-reason"].decode() for r in got)
    assert reasons == sorted(
        ["bad-framing", "bad-avro", "unknown-fingerprint", "invalid", "invalid", "bad-framing"]
    )
    for record in got:
        headers = dict(record.headers)
        assert headers["tstore-source-topic"] == topics.turn_events.encode()
        assert int(headers["tstore-source-offset"]) >= 2
    assert max(len(r.value or b"") for r in got) > 10_000_000, "the original bytes are kept"
