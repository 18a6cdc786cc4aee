"""The live projectors: one per generation that readers are shown, writing what they see,
handed over to the new generation after a cut-over."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from consumers.projector import Projector, group_for
from consumers.storage.clickhouse import Store
from consumers.storage.generations import GenerationError
from schemas import Topics


async def live_projectors(
    *, bootstrap: str, topics: Topics, base_group: str, store: Store, **options: Any
) -> list[Projector]:
    """Usually one; two while some projections show a rebuilt generation and others do not."""
    await asyncio.to_thread(store.migrate)
    shown = await asyncio.to_thread(store.generations.shown)
    if not shown:
        raise GenerationError(
            "no generation is shown to readers, so there is nothing to project; "
            "`tstore generations` lists them and `tstore rebuild` makes a new one"
        )
    return [
        Projector(
            bootstrap=bootstrap,
            topics=topics,
            group_id=group_for(base_group, store, number),
            store=store,
            generation=number,
            projections=projections,
            **options,
        )
        for number, projections in sorted(shown.items())
    ]


async def run_live(
    stop: asyncio.Event,
    *,
    bootstrap: str,
    topics: Topics,
    base_group: str,
    store: Store,
    check_every_s: float = 5.0,
    **options: Any,
) -> None:
    """Run the live projectors until ``stop``. When a cut-over (from a rebuild in any process)
    supersedes one of them, all stop after their batch and start again with what readers are
    shown now, so the new generation is picked up without a restart."""
    while not stop.is_set():
        projectors = await live_projectors(
            bootstrap=bootstrap, topics=topics, base_group=base_group, store=store, **options
        )
        async with AsyncExitStack() as stack:
            for projector in projectors:
                await stack.enter_async_context(projector)
            round_over = asyncio.Event()
            runs = [
                asyncio.create_task(p.run(round_over, check_every_s=check_every_s))
                for p in projectors
            ]
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([*runs, stopping], return_when=asyncio.FIRST_COMPLETED)
            round_over.set()
            stopping.cancel()
            await asyncio.gather(*runs)
