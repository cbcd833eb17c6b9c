"""`python -m moebench.tools.engine_bench`: how much the engine costs on a CPU.

Two numbers, one record (results/engine_bench/<model>/result.json), rendered into
reports/engine.md by `python -m moebench.report`:
- overhead: wall time of `full_resident` (our greedy loop + experts hook + virtual clock)
  against plain transformers `generate` on the same proxy and prompt, same process;
- simulation speed: simulated tokens per wall second for `mixtral_offloading`, live (the
  proxy runs) and replayed from the routing trace the live run recorded (no model).
"""

from __future__ import annotations

import argparse
import time

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from moebench.cli import CONF_DIR
from moebench.config import load_run_config
from moebench.engine.costs import CostModel
from moebench.engine.trace import RoutingTrace
from moebench.methods.registry import build_method
from moebench.models.build import build_model
from moebench.records import write_benchmark_record
from moebench.runner import charged_shape


def _config(model: str, method: str, new_tokens: int):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                f"model={model}",
                f"method={method}",
                f"workload.new_tokens={new_tokens}",
                "workload.prompt_len=32",
            ],
        )
    return load_run_config(OmegaConf.to_container(cfg, resolve=True))


def _timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(model: str, new_tokens: int, repeats: int) -> dict:
    run = _config(model, "full_resident", new_tokens)
    loaded = build_model(run.model)
    costs = CostModel(run.hardware, charged_shape(run, loaded))
    prompt = torch.randint(
        0, loaded.vocab_size, (1, 32), generator=torch.Generator().manual_seed(0)
    )
    full = build_method(run, loaded, costs)
    plain_sec = _timed(
        lambda: loaded.model.generate(
            prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
        ),
        repeats,
    )
    ours_sec = _timed(lambda: full.generate(prompt, new_tokens), repeats)

    off_run = _config(model, "mixtral_offloading", new_tokens)
    offload = build_method(off_run, loaded, costs)
    offload.record_routing = True  # keep the routing to replay it below
    live_sec = _timed(lambda: offload.generate(prompt, new_tokens), 1)
    trace = RoutingTrace.from_steps(offload.steps, [v.index for v in loaded.layers])
    replay_sec = _timed(lambda: offload.replay(trace), repeats)
    return {
        "model": model,
        "new_tokens": new_tokens,
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "plain_generate_sec": plain_sec,
        "full_resident_sec": ours_sec,
        "overhead_ratio": ours_sec / plain_sec,
        "sim_live_tokens_per_sec": new_tokens / live_sec,
        "sim_replay_tokens_per_sec": new_tokens / replay_sec,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m moebench.tools.engine_bench", description=__doc__
    )
    parser.add_argument("--model", default="proxy_phi35moe")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", default="results")
    args = parser.parse_args(argv)
    write_benchmark_record(
        args.results,
        "engine_bench",
        args.model,
        None,
        measure(args.model, args.new_tokens, args.repeats),
        arguments=vars(args),
    )


if __name__ == "__main__":
    main()
