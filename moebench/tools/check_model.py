"""The clock check's model and workload, shared by `tools/calibrate.py` (which fits the CPU
profile on other depths and expert widths of it) and `tools/clock_check.py` (which checks
the profile on it): a CPU-sized random Mixtral whose 22 MB experts make copies and expert
compute dominate a decode step.
"""

from __future__ import annotations

import json
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
