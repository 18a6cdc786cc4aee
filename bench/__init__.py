"""Benchmarks, run as ``.venv/bin/python -m bench.NAME --events N --json``.

With ``--json`` the last line printed is one JSON object of the figures the issue asks for.
Speed targets are checked here, never by timed tests.
"""
