"""One call to attach a producer to a voice-bot framework.

Adapters use the framework's objects by duck typing and import none of its modules, so they
load whether or not the framework's extra (``pipecat``, ``livekit``) is installed.
"""
