"""`python -m moebench.compare_records A B`: do two results folders hold the same records?

Two runs of one config and seed must give the same virtual-clock record, bit for bit, on
any x86-64 CPU with the same torch build. This pairs the records of two folders by
experiment and run key and compares what a run computed (weights, output hash, metrics,
per-step samples, method details and validity), leaving out what only says where and when
it ran (git, env, start time, wall seconds). A record timed by a real clock (`wall`, `cuda`)
is compared on its weights, output hash and validity alone: its times are measurements.
It prints one line per difference and exits 1 if any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from moebench.schema import RunRecord, load_records

COMPUTED = ("clock", "output_sha256", "validity", "metrics", "raw", "method_details")
TOKENS_ONLY = ("clock", "output_sha256", "validity")


def _key(record: RunRecord) -> tuple[str, str]:
    return record.experiment, record.run_key


def computed(record: RunRecord) -> dict[str, Any]:
    """What the run computed, as stored (older schemas migrated first)."""
    data = record.to_dict()
    keys = COMPUTED if record.clock == "virtual" else TOKENS_ONLY
    return {"weights_sha256": record.model.weights_sha256} | {k: data.get(k) for k in keys}


def differences(a: Any, b: Any, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for k in sorted(set(a) | set(b), key=str)
            for d in differences(a.get(k), b.get(k), f"{path}.{k}")
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def compare_folders(first: Path, second: Path) -> tuple[int, list[str]]:
    """(records paired, difference lines) between two results folders."""
    a = {_key(r): r for r in load_records(first)}
    b = {_key(r): r for r in load_records(second)}
    lines = [f"only in {first}: {k[0]}/{k[1]}" for k in sorted(set(a) - set(b))]
    lines += [f"only in {second}: {k[0]}/{k[1]}" for k in sorted(set(b) - set(a))]
    for key in sorted(set(a) & set(b)):
        lines += [
            f"{key[0]}/{key[1]} {d}" for d in differences(computed(a[key]), computed(b[key]), "")
        ]
    return len(set(a) & set(b)), lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m moebench.compare_records",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    for folder in (args.first, args.second):
        if not folder.is_dir():
            print(f"moebench.compare_records: {folder} is not a folder", file=sys.stderr)
            return 2
    paired, lines = compare_folders(args.first, args.second)
    for line in lines:
        print(line)
    if not paired:
        print("moebench.compare_records: no record is in both folders", file=sys.stderr)
        return 1
    print(f"moebench.compare_records: {paired} records paired, {len(lines)} differences")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
