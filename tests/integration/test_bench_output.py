"""A benchmark's ``--json`` is one JSON line on stdout, whatever the store and the projectors
log while it runs (they wrote to stdout before it, which a script reading the figures broke
on)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_figures_are_the_only_output() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.projector", "--events", "2000", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}; its stderr ends:\n{done.stderr[-4000:]}"
    (line,) = done.stdout.splitlines()
    assert json.loads(line)["events"] == 2000
    assert "projector" in done.stderr  # the logs went to stderr
