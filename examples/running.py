"""The command line both example bots share: a producer, one session, its counters."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Awaitable, Callable

from producers import TranscriptProducer

BotRun = Callable[[TranscriptProducer, str], Awaitable[None]]


def run_example(framework: str, description: str, run_bot: BotRun) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    bootstrap: str = parser.parse_args().bootstrap

    async def main() -> None:
        session_id = f"{framework}-{uuid.uuid4().hex[:8]}"
        async with TranscriptProducer(
            bootstrap, bot_id=f"{framework}-example", framework=framework
        ) as producer:
            await run_bot(producer, session_id)
        print(f"session {session_id}: {producer.stats}")

    asyncio.run(main())
