"""`python -m moebench.tools.speq_cpu`: our speculative loop against transformers' assisted
generation with the same INT4 draft on the same proxy, CPU wall clock, one run.

transformers needs the draft as a separate model object, so it gets a copy of the proxy whose
routed experts hold the draft's dequantized INT4 weights (fixed draft length, greedy), while
our loop swaps the target's own expert storage. Both must emit the plain greedy tokens. The
record (results/speq_cpu/<model>/result.json) holds seconds, target forward calls and
tokens per target call for each.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from moebench.config import ModelConfig
from moebench.models.proxies import PROXIES
from moebench.models.train import load_proxy
from moebench.records import write_benchmark_record
from moebench.speq.decode import speculative_decode
from moebench.speq.draft import Draft


def count_calls(model) -> list[int]:
    calls = [0]
    model.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def measure(name: str, new_tokens: int, k: int) -> dict:
    spec = PROXIES[name]
    loaded = load_proxy(
        ModelConfig(name=name, family=spec.family, source="proxy", proxy_of=spec.proxy_of)
    )
    from moebench.models.corpora import calibration_windows

    draft = Draft(loaded, "gptq", calibration=calibration_windows(loaded, 16, 128, seed=1))
    prompt = calibration_windows(loaded, 1, 64, seed=3, split="valid")[0]
    assistant = copy.deepcopy(loaded.model)
    for view in loaded.layers:
        experts = assistant.model.layers[view.index].mlp.experts
        experts.gate_up_proj.data, experts.down_proj.data = (
            w.clone() for w in draft.weights[view.index]
        )
    assistant.generation_config.num_assistant_tokens = k
    assistant.generation_config.num_assistant_tokens_schedule = "constant"
    assistant.generation_config.assistant_confidence_threshold = (
        0.0  # always draft k tokens, as ours
    )
    calls = count_calls(loaded.model)

    start = time.perf_counter()
    plain = loaded.model.generate(
        prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
    )
    plain_sec, plain_calls = time.perf_counter() - start, calls[0]

    calls[0] = 0
    start = time.perf_counter()
    assisted = loaded.model.generate(
        prompt,
        assistant_model=assistant,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
    )
    hf_sec, hf_calls = time.perf_counter() - start, calls[0]

    calls[0] = 0
    start = time.perf_counter()
    ours = speculative_decode(loaded, draft, prompt, new_tokens, choose_k=lambda: k)
    ours_sec, ours_calls = time.perf_counter() - start, calls[0]

    reference = plain[0, prompt.shape[1] :].tolist()
    return {
        "model": name,
        "new_tokens": new_tokens,
        "k": k,
        "torch_threads": torch.get_num_threads(),
        "plain_sec": plain_sec,
        "plain_target_calls": plain_calls,
        "hf_assisted_sec": hf_sec,
        "hf_assisted_target_calls": hf_calls,
        "hf_assisted_tokens_per_target_call": new_tokens / hf_calls,
        "ours_sec": ours_sec,
        "ours_forward_calls": ours_calls,
        "ours_target_calls": ours.target_calls,
        "ours_tokens_per_target_call": new_tokens / ours.target_calls,
        "hf_assisted_matches_greedy": assisted[0, prompt.shape[1] :].tolist() == reference,
        "ours_matches_greedy": ours.tokens == reference,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m moebench.tools.speq_cpu", description=__doc__)
    parser.add_argument("--model", default="proxy_phi35moe")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--results", default="results")
    args = parser.parse_args(argv)
    metrics = measure(args.model, args.new_tokens, args.k)
    write_benchmark_record(
        args.results,
        "speq_cpu",
        args.model,
        PROXIES[args.model].proxy_of,
        metrics,
        valid=metrics["ours_matches_greedy"],
        arguments=vars(args),
    )


if __name__ == "__main__":
    main()
