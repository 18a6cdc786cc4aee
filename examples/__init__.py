"""Runnable example bots. Each runs offline (scripted input, no API keys); the comments show
where a real transport, STT, LLM and TTS go."""
