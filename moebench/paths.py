"""Where the repository, its configs and the sibling ../shared/data live (one place)."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = REPO_ROOT / "conf"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MIXTRAL_TRACE = (
    SHARED_DATA
    / "moe_routing_traces"
    / "mixtral-8x7b-instruct-v0.1-fp8"
    / "humaneval_2_routing.jsonl"
)


@contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator:
    """Write `path` whole or not at all: into a temporary file in the same folder, flushed to
    disk, then renamed over `path` (a killed run never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
