"""The live projectors: one per generation that readers are shown, writing what they see."""

from __future__ import annotations

import asyncio
from typing import Any

from consumers.projector import Projector, group_for
from consumers.storage.clickhouse import Store
from schemas import Topics


async def live_projectors(
    *, bootstrap: str, topics: Topics, base_group: str, store: Store, **options: Any
) -> list[Projector]:
    """Usually one; two while some projections show a rebuilt generation and others do not."""
    await asyncio.to_thread(store.migrate)
    shown = await asyncio.to_thread(store.generations.shown)
    return [
        Projector(
            bootstrap=bootstrap,
            topics=topics,
            group_id=group_for(base_group, number),
            store=store,
            generation=number,
            projections=projections,
            **options,
        )
        for number, projections in sorted(shown.items())
    ]
