"""Running the real ``tstore`` command as a user would: its own process, only the settings given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TSTORE = str(Path(sys.executable).with_name("tstore"))


def run_tstore(
    *args: str, cwd: Path, timeout: float = 120, **settings: str
) -> subprocess.CompletedProcess[str]:
    """``tstore ARGS`` in ``cwd`` with data under ``cwd/data``; no TSTORE_ variable of this
    process leaks in."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("TSTORE_")}
    return subprocess.run(
        [TSTORE, *args],
        env=kept | {"TSTORE_DATA_DIR": str(cwd / "data")} | settings,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
