"""A LiveKit Agents bot whose turns are recorded by transcript-store.

Run it next to a broker (``tstore dev-kafka --port 9092``, then ``tstore create-topics``):

    .venv/bin/python -m examples.livekit_bot --bootstrap 127.0.0.1:9092

It runs an ``AgentSession`` offline with a scripted LLM and text input. In a real agent the
session has ``stt``, ``llm`` and ``tts`` and starts in the job's room with ``record=True``;
``attach_livekit(producer, session, job_context=ctx)`` then takes the session id from the job,
closes the producer from the job's shutdown, and copies the session recording into the chunk
store and publishes it before the job deletes it (see README, "Attach a bot").
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit.agents import Agent, AgentSession, llm
from livekit.agents.llm import ChatChunk, ChoiceDelta
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from examples.running import run_example
from producers import TranscriptProducer
from producers.adapters.livekit import attach_livekit


class ScriptedStream(llm.LLMStream):
    def __init__(self, owner: ScriptedLLM, reply: str, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self._reply = reply
        self._pause_s = owner.pause_s

    async def _run(self) -> None:
        for word in self._reply.split(" "):
            await asyncio.sleep(self._pause_s)
            self._event_ch.send_nowait(
                ChatChunk(id="scripted", delta=ChoiceDelta(role="assistant", content=f"{word} "))
            )


class ScriptedLLM(llm.LLM[Any]):
    """Stands in for a real LLM: answers with the next reply, a word every ``pause_s``."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies = replies
        self.pause_s = 0.0

    def chat(
        self,
        *,
        chat_ctx: Any,
        tools: Any = None,
        conn_options: Any = DEFAULT_API_CONNECT_OPTIONS,
        **_: Any,
    ) -> ScriptedStream:
        return ScriptedStream(
            self,
            self.replies.pop(0),
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=conn_options,
        )


async def run_bot(producer: TranscriptProducer, session_id: str) -> None:
    """A question, its answer, then a second answer that gets interrupted."""
    scripted = ScriptedLLM(["It shipped Monday.", "Let me read you the whole tracking history"])
    session: AgentSession[None] = AgentSession(llm=scripted)
    attach_livekit(producer, session, session_id=session_id, user_id="caller-7")
    await session.start(Agent(instructions="Help with orders."))
    await session.run(user_input="Where is my order?")
    scripted.pause_s = 0.2
    session.generate_reply(user_input="What route did it take?")
    await asyncio.sleep(0.5)
    await session.interrupt()
    await asyncio.sleep(0.3)
    await session.aclose()


if __name__ == "__main__":
    run_example("livekit", __doc__ or "", run_bot)
