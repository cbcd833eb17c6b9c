"""Golden-file comparison: `make golden` (MOEBENCH_UPDATE_GOLDEN=1) rewrites, tests compare."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN_DIR / name
    if os.environ.get("MOEBENCH_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run `make golden`"
    assert text == path.read_text(), f"{name} changed; if intended, run `make golden`"
