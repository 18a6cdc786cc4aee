"""The store's HTTP service, served in the test's own process on a free loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from service.app import create_app
from service.process import EmbeddedServer, bind
from service.state import StoreState


@asynccontextmanager
async def serving(state: StoreState, *, queries: bool = True) -> AsyncIterator[str]:
    """The base URL of ``state``'s service while the block runs."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = EmbeddedServer(
        uvicorn.Config(create_app(state, queries=queries), log_config=None, access_log=False),
        state,
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
