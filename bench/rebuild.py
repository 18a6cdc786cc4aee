"""Rebuild throughput: replay a pre-filled topic into a new generation, verification and
cut-over included. JSON keys: ``events``, ``rebuild_seconds``, ``rebuild_eps``.

The store starts empty (generation 1, nothing projected), so the figure is the replay alone:
the live projector's rate, measured by ``bench.projector``, is the number to set it against.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.projector import PARTITIONS, prefill
from bench.report import run
from consumers.projections import PROJECTIONS
from consumers.rebuild import plan_rebuild, rebuild
from consumers.storage.clickhouse import EMBEDDED, Store, connect
from consumers.topics_admin import ensure_topics
from schemas import Topics
from tstore.devkafka import DevKafka


async def rebuild_seconds(bootstrap: str, topics: Topics, store: Store, events: int) -> float:
    began = time.perf_counter()
    await asyncio.to_thread(store.migrate)
    plan = await plan_rebuild(
        bootstrap=bootstrap,
        topics=topics,
        store=store,
        base_group="bench",
        projections=PROJECTIONS,
        until=None,
        resume=False,
    )
    summary = await rebuild(plan, bootstrap=bootstrap, topics=topics, store=store)
    elapsed = time.perf_counter() - began
    assert summary.events == events, summary
    assert summary.verification.ok, summary.verification
    return elapsed


def measure(events: int) -> dict[str, float]:
    # The embedded engine lives as long as the process and may still be writing its parts
    # when the folder goes: what it leaves is removed as far as it can be.
    with (
        DevKafka(heap="1g") as broker,
        tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as folder,
    ):
        topics = Topics("bench.")
        asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=PARTITIONS))
        asyncio.run(prefill(broker.bootstrap, topics, events))
        store = Store(connect(f"{EMBEDDED}{Path(folder) / 'clickhouse'}", "bench"))
        seconds = asyncio.run(rebuild_seconds(broker.bootstrap, topics, store, events))
    return {"events": events, "rebuild_seconds": seconds, "rebuild_eps": events / seconds}


if __name__ == "__main__":
    run(__doc__ or "", 1_000_000, measure)
