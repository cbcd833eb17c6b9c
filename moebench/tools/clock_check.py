"""`python -m moebench.tools.clock_check`: the virtual clock checked against the wall clock.

The same configs run twice on a CPU-sized random Mixtral-shaped model whose 22 MB experts
make copies and expert compute dominate: once on `backend=real device=cpu` (real copies into
the slot pool, timed by the wall clock) and once on `backend=virtual hardware=cpu` (the
profile `python -m moebench.tools.calibrate` measured on this machine). Records go to
results/engine_clock_check/; `python -m moebench.report` puts virtual/wall TPOT per config in
reports/engine_clock_check.md. Both runs emit the same tokens (same output hash).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from moebench.cli import CONF_DIR, compose_run_config
from moebench.config import ModelConfig

# (method, expert slots per MoE layer; None = everything resident)
CONFIGS = [
    ("full_resident", None),
    ("ondemand", 2),
    ("mixtral_offloading", 3),
    ("mixtral_offloading", 5),
    ("next_layer_prefetch", 3),
]
WORKLOAD = [
    "workload=debug",
    "workload.num_prompts=2",
    "workload.prompt_len=16",
    "workload.new_tokens=24",
]


def budget_gb(slots: int, max_tokens: int) -> float:
    """The budget at which `slots` experts per layer of the clock-check model fit."""
    import yaml

    from moebench.engine.budget import budget_gb_for_slots
    from moebench.models.loaded import hf_config_for
    from moebench.models.shape import shape_from_hf_config

    data = yaml.safe_load((CONF_DIR / "model" / "clock_check_mixtral.yaml").read_text())
    cfg = ModelConfig(**data)
    return budget_gb_for_slots(
        shape_from_hf_config(hf_config_for(cfg.family, cfg.arch)), slots + 0.5, max_tokens
    )


def run(results: str, overrides: list[str]) -> Path:
    from moebench.runner import execute

    return execute(
        compose_run_config(
            [
                f"results_dir={results}",
                "+experiment=engine_clock_check",
                "model=clock_check_mixtral",
                "hardware=cpu",
                *WORKLOAD,
                *overrides,
            ]
        )
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m moebench.tools.clock_check", description=__doc__
    )
    parser.add_argument("--results", default="results")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    for method, slots in CONFIGS:
        budget = "null" if slots is None else budget_gb(slots, 16 + 24)
        for backend in ("real", "virtual"):
            path = run(
                args.results,
                [
                    f"method={method}",
                    f"method.budget_gb={budget}",
                    f"backend={backend}",
                    "device=cpu",
                    f"force={str(args.force).lower()}",
                ],
            )
            if path:
                m = json.loads(path.read_text())["metrics"]
                print(f"{method} slots={slots} {backend}: TPOT {m['tpot_sec_mean'] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
