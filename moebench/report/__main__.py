"""`python -m moebench.report`: turn result records (and only records) into reports/.

For now it writes `reports/summary.md`, one row per record. Later issues add per-experiment
tables with the papers' numbers beside ours, and figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from moebench.report.engine import write_engine_report
from moebench.report.summary import write_summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m moebench.report", description=__doc__)
    parser.add_argument("--results", default="results", help="folder of result records")
    parser.add_argument("--out", default="reports", help="folder for the reports")
    args = parser.parse_args(argv)
    for writer in (write_summary, write_engine_report):
        path = writer(Path(args.results), Path(args.out))
        if path is not None:
            print(f"moebench.report: wrote {path}")


if __name__ == "__main__":
    main()
