"""`python -m moebench.tools.tape_coupling`: how often MoE-SpeQ's draft is accepted when draft
and target sample from one shared noise tape, against rejection sampling's 1 - TV bound.

Standard speculative sampling accepts a drafted token with probability min(1, p/q), whose
mean is 1 - TV(p, q). Our verification is exact in another way: both models take the
Gumbel-max choice on the same tape, and a draft is accepted iff the two choices agree. That
coupling's agreement is measured here, not assumed, on held-out text with teacher forcing
(every position sees the same context for draft and target), over many tapes per position.
No clock: the record holds probabilities only.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from moebench.bench.sampling import gumbel_noise
from moebench.config import ModelConfig
from moebench.determinism import fixed_threads
from moebench.models.proxies import PROXIES
from moebench.models.train import load_proxy
from moebench.records import write_benchmark_record
from moebench.speq.draft import Draft


@torch.no_grad()
def measure(name: str, temperatures: list[float], windows: int, length: int, tapes: int) -> dict:
    from moebench.models.corpora import calibration_windows

    spec = PROXIES[name]
    loaded = load_proxy(
        ModelConfig(name=name, family=spec.family, source="proxy", proxy_of=spec.proxy_of)
    )
    draft = Draft(loaded, "gptq", calibration=calibration_windows(loaded, 16, 128, seed=1))
    texts = calibration_windows(loaded, windows, length, seed=2, split="valid")
    target = torch.cat([loaded.model(input_ids=x).logits[0] for x in texts]).double()
    with draft.active():
        drafted = torch.cat([loaded.model(input_ids=x).logits[0] for x in texts]).double()
    out = {
        "weights_sha256": loaded.weights_sha256,
        "positions": int(target.shape[0]),
        "tapes_per_position": tapes,
        "greedy_agree_frac": float((target.argmax(-1) == drafted.argmax(-1)).double().mean()),
    }
    for t in temperatures:
        p, q = torch.softmax(target / t, -1), torch.softmax(drafted / t, -1)
        tv = 0.5 * (p - q).abs().sum(-1)
        lp, lq = (torch.log_softmax(x / t, -1).numpy() for x in (target, drafted))
        agree = np.mean(
            [
                [
                    np.argmax(lp[i] + g) == np.argmax(lq[i] + g)
                    for g in (gumbel_noise(7, r, i, lp.shape[1]) for r in range(tapes))
                ]
                for i in range(lp.shape[0])
            ]
        )
        out[f"T{t}/one_minus_tv_mean"] = float(1 - tv.mean())
        out[f"T{t}/tape_accept_frac"] = float(agree)
        out[f"T{t}/tape_over_rejection_bound"] = float(agree / (1 - tv.mean()))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m moebench.tools.tape_coupling", description=__doc__
    )
    parser.add_argument("--model", default="proxy_phi35moe", choices=sorted(PROXIES))
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.5, 0.7, 1.0])
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--tapes", type=int, default=32)
    parser.add_argument("--results", default="results")
    args = parser.parse_args(argv)
    with fixed_threads(1):
        metrics = measure(args.model, args.temperatures, args.windows, args.length, args.tapes)
    weights = metrics.pop("weights_sha256")
    write_benchmark_record(
        args.results,
        "tape_coupling",
        args.model,
        PROXIES[args.model].proxy_of,
        metrics,
        weights_sha256=weights,
        arguments=vars(args),
    )


if __name__ == "__main__":
    main()
