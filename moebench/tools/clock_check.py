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
from dataclasses import dataclass

from moebench.tools.check_model import NEW_TOKENS, PROMPT_LEN, budget_gb, run_tpot


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


def check_overrides(check: Check, force: bool, device: str = "cpu") -> list[str]:
    """The run overrides of one check on `device` (tests/gpu runs them with `cuda`)."""
    budget = (
        "null"
        if check.slots is None
        else budget_gb(check.slots, PROMPT_LEN + NEW_TOKENS, check.method)
    )
    return [
        f"method={check.method}",
        f"method.budget_gb={budget}",
        *check.options,
        f"device={device}",
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
