"""The command line both example bots share: a producer, one session, its counters.

What the examples write (the spool, the audio) goes under ``TSTORE_DATA_DIR`` (``data/`` by
default), as the command line's does, never into the folder they are started from."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Awaitable, Callable

from producers import TranscriptProducer
from tstore.settings import Settings

DATA_DIR = Settings.load().data_dir

BotRun = Callable[[TranscriptProducer, str], Awaitable[None]]


def run_example(framework: str, description: str, run_bot: BotRun) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    bootstrap: str = parser.parse_args().bootstrap

    async def main() -> None:
        session_id = f"{framework}-{uuid.uuid4().hex[:8]}"
        async with TranscriptProducer(
            bootstrap,
            bot_id=f"{framework}-example",
            framework=framework,
            spool_dir=DATA_DIR / f"{framework}-example-spool",
        ) as producer:
            await run_bot(producer, session_id)
        print(f"session {session_id}: {producer.stats}")

    asyncio.run(main())
