"""16-bit PCM WAV, the form the producers write chunks in and the service sends clips in."""

from __future__ import annotations

import io
import wave

SAMPLE_WIDTH = 2
"""16-bit PCM, what Pipecat and LiveKit hand over."""


def wav_bytes(pcm: bytes, sample_rate: int, channels: int) -> bytes:
    """A WAV file of ``pcm``: 16-bit little-endian samples, ``channels`` interleaved."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()
