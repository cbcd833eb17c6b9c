"""Which real checkpoint a record ran: the sha256 of every weight, config and tokenizer file.

Hashing a 90 GB checkpoint takes minutes, so each file's hash is computed once and cached
by (path, size, mtime): a later run reads it back, and an edited file (new size or mtime)
is hashed again. The identity is one sha256 over the per-file hashes, plus the hub revision
when the checkpoint came from the hub.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from moebench.models.corpora import cache_dir

WEIGHT_PATTERNS = ("*.safetensors", "*.bin")
IDENTITY_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
)


def _hash_cache() -> Path:
    return cache_dir() / "checkpoints" / "file_sha256.json"


def file_sha256(path: Path) -> str:
    """The file's sha256, from the cache when its path, size and mtime are unchanged."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache = _hash_cache()
    known = json.loads(cache.read_text()) if cache.exists() else {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 24), b""):
            digest.update(chunk)
    known = (
        json.loads(cache.read_text()) if cache.exists() else {}
    )  # another run may have added some
    known[key] = digest.hexdigest()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
    os.replace(tmp, cache)
    return known[key]


def checkpoint_identity(folder: Path, revision: str | None = None) -> dict:
    """{sha256, files, revision, path} of the checkpoint in `folder`."""
    folder = Path(folder)
    weights = sorted({p for pattern in WEIGHT_PATTERNS for p in folder.glob(pattern)})
    others = [folder / name for name in IDENTITY_FILES if (folder / name).exists()]
    files = {p.name: file_sha256(p) for p in [*weights, *others]}
    combined = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return {"sha256": combined, "files": files, "revision": revision, "path": str(folder)}


def hub_snapshot(hf_id: str) -> Path | None:
    """The local snapshot folder a hub checkpoint was loaded from (None if not found)."""
    try:
        from transformers.utils import cached_file

        config = cached_file(hf_id, "config.json", local_files_only=True)
    except (OSError, ValueError):
        return None
    return Path(config).parent if config else None
