"""Mirrors of a finished record (W&B). A mirror failure warns and never loses the record."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from moebench.config import LoggerConfig


def mirror(logger: LoggerConfig, record: dict[str, Any], record_dir: Path) -> None:
    """Send the record's config and metrics to the configured logger (after it is on disk)."""
    if logger.name == "none":
        return
    try:
        import wandb

        run = wandb.init(
            project=logger.project,
            mode=logger.mode,
            dir=str(record_dir),
            name=record["run_key"],
            group=record["experiment"],
            config=record["config"],
            reinit="finish_previous",
        )
        run.log({k: v for k, v in record["metrics"].items() if isinstance(v, (int, float))})
        run.summary["clock"] = record["clock"]
        run.summary["valid"] = record["validity"]["valid"]
        run.finish()
    except Exception as err:  # noqa: BLE001 - a mirror must never cost the local record
        print(
            f"moebench: warning: {logger.name} mirror failed ({type(err).__name__}: {err}); "
            f"the record is safe at {record_dir}",
            file=sys.stderr,
        )
