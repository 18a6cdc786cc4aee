"""Running the real ``tstore`` command as a user would: its own process, only the settings given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TSTORE = str(Path(sys.executable).with_name("tstore"))


def tstore_env(cwd: Path, **settings: str) -> dict[str, str]:
    """This process's environment without its TSTORE_ variables, data under ``cwd/data``, and
    ``settings``: what a ``tstore`` started for a test sees."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("TSTORE_")}
    return kept | {"TSTORE_DATA_DIR": str(cwd / "data")} | settings


def run_tstore(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """``tstore ARGS`` in ``cwd``, to its end (see ``tstore_env``)."""
    return subprocess.run(
        [TSTORE, *args],
        env=tstore_env(cwd, **settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
