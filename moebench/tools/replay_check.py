"""`python -m moebench.tools.replay_check`: committed records rerun both ways, live and
replayed from their point's routing recording, must agree bit for bit.

For a sample of the decode records under `--results` whose method replays (every method but
MoE-SpeQ), it reruns each record's config twice into a scratch folder: once live
(`replay=false`) and once from the point's recording (made first if missing). It prints one
line per difference between the two and, for each record, whether the rerun also matches the
committed record (it cannot where the committed record ran other weights, e.g. a proxy
trained before kernels were pinned). Exits 1 if live and replay differ anywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
from pathlib import Path

from moebench.compare_records import compare_folders, computed, differences
from moebench.methods.registry import routing_identity
from moebench.runner import execute
from moebench.schema import RunRecord, load_record, load_records


def replayable(records: list[RunRecord]) -> list[RunRecord]:
    out = []
    for record in records:
        cfg = record.config
        if cfg is None or cfg.kind != "decode":
            continue
        if routing_identity(dataclasses.replace(cfg, replay=True)) is not None:
            out.append(record)
    return out


def rerun(record: RunRecord, scratch: Path) -> tuple[RunRecord, RunRecord]:
    """(live, replayed) reruns of the record's config."""
    cfg = dataclasses.replace(record.config, force=True, timeline=False, record_trace=False)
    live = execute(dataclasses.replace(cfg, results_dir=str(scratch / "live"), replay=False))
    replayed_cfg = dataclasses.replace(cfg, results_dir=str(scratch / "replayed"), replay=True)
    replayed = load_record(execute(replayed_cfg))
    if replayed.replayed_from is None:  # it made the recording: now replay it
        replayed = load_record(execute(replayed_cfg))
    return load_record(live), replayed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m moebench.tools.replay_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--sample", type=int, default=6, help="records to rerun (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="which records the sample takes")
    parser.add_argument("--experiment", action="append", help="only these experiments")
    args = parser.parse_args(argv)
    records = replayable(load_records(args.results))
    if args.experiment:
        records = [r for r in records if r.experiment in args.experiment]
    if args.sample and len(records) > args.sample:
        records = random.Random(args.seed).sample(records, args.sample)
    with tempfile.TemporaryDirectory(prefix="replay_check-") as tmp:
        scratch = Path(tmp)
        for record in records:
            live, replayed = rerun(record, scratch)
            if live.model.sha256 != record.model.sha256:
                committed = "the committed record ran other weights"
            else:
                n = len(differences(computed(record), computed(live), ""))
                committed = f"{n} differences from the committed record"
            print(f"{record.experiment}/{record.run_key}: {replayed.replayed_from}; {committed}")
        paired, lines = compare_folders(scratch / "live", scratch / "replayed")
    for line in lines:
        print(line)
    differing = len(lines)
    print(f"replay_check: {paired} records rerun live and replayed, {differing} differences")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
