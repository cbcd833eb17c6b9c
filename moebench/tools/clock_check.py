"""`python -m moebench.tools.clock_check`: the virtual clock checked against the wall clock.

The same configs run twice on a CPU-sized random Mixtral-shaped model whose 22 MB experts
make copies and expert compute dominate: once on `backend=real device=cpu` (real copies into
the slot pool, timed by the wall clock) and once on `backend=virtual hardware=cpu` (the
profile `python -m moebench.tools.calibrate` measured on this machine; `--calibrate` measures
it first, so the profile and the check see the same machine). The configs cover the
offloading baselines, MoE-SpeQ with its INT4 draft and with the resident draft, and Prism's
sub-expert offloading. Records go to results/engine_clock_check/; `python -m moebench.report`
puts virtual/wall TPOT per config in reports/engine_clock_check.md, with a paired interval
over the workload's sequences. Both runs of a config emit the same tokens (same output hash).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from moebench.cli import CONF_DIR, compose_run_config
from moebench.config import ModelConfig

MODEL = "clock_check_mixtral"
PROMPT_LEN, NEW_TOKENS = 16, 24
WORKLOAD = [
    "workload=debug",
    "workload.num_prompts=8",
    f"workload.prompt_len={PROMPT_LEN}",
    f"workload.new_tokens={NEW_TOKENS}",
]


@dataclass(frozen=True)
class Check:
    """One config of the check: a method, its FP16 expert slots per layer (None: all
    resident) and any method options."""

    method: str
    slots: int | None
    options: tuple[str, ...] = ()


CHECKS = [
    Check("full_resident", None),
    Check("ondemand", 2),
    Check("mixtral_offloading", 3),
    Check("mixtral_offloading", 5),
    Check("next_layer_prefetch", 3),
    # RTN drafts: GPTQ on 32 random 22 MB experts takes about 20 min here, and the draft's
    # quantizer changes what is accepted, not how a step is timed
    Check("speq", 3, ("method.options.k_max=4", "method.options.quant=rtn")),
    Check("speq_resident", 3, ("method.options.k_max=4",)),
    Check(
        "prism",
        3,
        (
            "method.options.partition=contiguous",
            "++method.options.fused_experts=true",
            "++method.options.slo_experts=1.5",
        ),
    ),
]


def model_shape():
    import yaml

    from moebench.models.loaded import hf_config_for
    from moebench.models.shape import shape_from_hf_config

    data = yaml.safe_load((CONF_DIR / "model" / f"{MODEL}.yaml").read_text())
    cfg = ModelConfig(**data)
    return shape_from_hf_config(hf_config_for(cfg.family, cfg.arch))


def budget_gb(slots: int, max_tokens: int, method: str = "full_resident") -> float:
    """The budget at which `slots` FP16 experts per layer of the clock-check model fit, beside
    the INT4 draft a MoE-SpeQ with an INT4 draft keeps on the device."""
    from moebench.engine.budget import budget_gb_for_slots, int4_expert_bytes

    shape = model_shape()
    draft = int4_expert_bytes(shape) * shape.num_experts * len(shape.moe_layers)
    return budget_gb_for_slots(
        shape, slots + 0.5, max_tokens, draft_bytes=draft if method == "speq" else 0.0
    )


def run(results: str, overrides: list[str]) -> Path:
    from moebench.runner import execute

    return execute(
        compose_run_config(
            [
                f"results_dir={results}",
                "+experiment=engine_clock_check",
                f"model={MODEL}",
                "hardware=cpu",
                *WORKLOAD,
                *overrides,
            ]
        )
    )


def run_tpot(results: str, overrides: list[str]) -> float:
    """Mean decode seconds per token of one run of the check's model and workload."""
    return json.loads(run(results, overrides).read_text())["metrics"]["tpot_sec_mean"]


def check_overrides(check: Check, force: bool) -> list[str]:
    budget = (
        "null"
        if check.slots is None
        else budget_gb(check.slots, PROMPT_LEN + NEW_TOKENS, check.method)
    )
    return [
        f"method={check.method}",
        f"method.budget_gb={budget}",
        *check.options,
        "device=cpu",
        f"force={str(force).lower()}",
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m moebench.tools.clock_check", description=__doc__
    )
    parser.add_argument("--results", default="results")
    parser.add_argument("--force", action="store_true")
    parser.add_argument(
        "--calibrate", action="store_true", help="measure conf/hardware/cpu.yaml first"
    )
    args = parser.parse_args(argv)
    if args.calibrate:
        from moebench.tools import calibrate

        calibrate.main([])
    for check in CHECKS:
        for backend in ("real", "virtual"):
            overrides = [*check_overrides(check, args.force), f"backend={backend}"]
            if backend == "virtual":
                overrides.append("replay=false")  # the model runs, as on the real side
            tpot = run_tpot(args.results, overrides)
            print(f"{check.method} slots={check.slots} {backend}: TPOT {tpot * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
