"""A Pipecat bot whose turns and audio are recorded by transcript-store.

Run it next to a broker (``tstore dev-kafka --port 9092``, then ``tstore create-topics``):

    .venv/bin/python -m examples.pipecat_bot --bootstrap 127.0.0.1:9092

It plays a scripted exchange through the real aggregators offline; in a real bot the pipeline
is ``transport.input(), stt, user_aggregator, llm, tts, transport.output(), audio_buffer,
assistant_aggregator`` and the three transcript-store lines stay the same.
"""

from __future__ import annotations

import asyncio
from functools import partial

from pipecat.frames.frames import (
    AudioBufferStartRecordingFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.audio_buffer_processor import AudioBufferProcessor
from pipecat.tests.utils import SleepFrame
from pipecat.transcriptions.language import Language
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from audio.stores import ChunkWriter, open_chunk_store
from examples.running import DATA_DIR, run_example
from producers import TranscriptProducer
from producers.adapters.pipecat import attach_pipecat

RATE = 16000


def scripted_exchange() -> list[Frame]:
    """A user question, an answer, and a second answer the user interrupts."""
    return [
        AudioBufferStartRecordingFrame(),
        UserStartedSpeakingFrame(),
        InputAudioRawFrame(audio=b"\x01\x00" * 1600, sample_rate=RATE, num_channels=1),
        TranscriptionFrame(
            text="Where is my order?", user_id="", timestamp="", language=Language.EN_US
        ),
        SleepFrame(0.1),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.1),
        LLMFullResponseStartFrame(),
        LLMTextFrame("It shipped "),
        LLMTextFrame("Monday."),
        LLMFullResponseEndFrame(),
        OutputAudioRawFrame(audio=b"\x02\x00" * 3200, sample_rate=RATE, num_channels=1),
        SleepFrame(0.3),
        LLMFullResponseStartFrame(),
        LLMTextFrame("Anything else"),
        SleepFrame(0.1),
        InterruptionFrame(),
        SleepFrame(0.2),
    ]


async def run_bot(
    producer: TranscriptProducer, session_id: str, chunk_store: ChunkWriter | None = None
) -> None:
    context_aggregator = LLMContextAggregatorPair(
        LLMContext(),
        user_params=LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies()),
    )
    audio_buffer = AudioBufferProcessor(sample_rate=RATE, buffer_size=3200)
    pipeline = Pipeline([context_aggregator.user(), audio_buffer, context_aggregator.assistant()])
    worker = PipelineWorker(pipeline, cancel_on_idle_timeout=False)
    attach_pipecat(
        producer,
        context_aggregator,
        session_id=session_id,
        audio_buffer=audio_buffer,
        chunk_store=chunk_store,
        user_id="caller-7",
        task=worker,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), _converse(worker))


async def _converse(worker: PipelineWorker) -> None:
    """The scripted exchange, as a transport would push it, then the end of the call."""
    started = asyncio.Event()
    worker.add_event_handler("on_pipeline_started", lambda *_: started.set())
    await started.wait()
    for frame in scripted_exchange():
        if isinstance(frame, SleepFrame):
            await asyncio.sleep(frame.sleep)
        else:
            await worker.queue_frame(frame)
    await worker.queue_frame(EndFrame())


if __name__ == "__main__":
    chunks = open_chunk_store(str(DATA_DIR / "chunks"))
    run_example("pipecat", __doc__ or "", partial(run_bot, chunk_store=chunks))
