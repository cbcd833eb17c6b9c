"""`prism`: MoE-Prism's refactored model at a chosen number of active sub-experts K.

The proxy is carved into N sub-experts per expert (neuron partition: greedy + simulated
annealing on calibration activations, or the random / contiguous / balanced k-means
ablations) and re-gated by one of the paper's three gates (`gate`): the linear gate without
fine-tuning (lg), the Complex Gate (cg, prism/gates.py) or the linear gate with router
fine-tuning (lg_ft, prism/finetune.py). Partitions and fine-tuned routers are cached by
(model weights hash, data hash, options). Quality runs through lm-eval like any method.

Timing: the clock charges the carved model's sizes (experts x N, top-k x N, width / N). With
`budget_gb` null every sub-expert is resident; with a budget, this is MoE-Prism's offloading
manager (paper section 5b): an LRU cache of sub-experts in the budget left after the
non-expert weights and KV cache, so fragments too small for a whole expert still hold
sub-experts, and a miss moves only the sub-expert the token needs.
"""

from __future__ import annotations

import math

import torch

from moebench.engine.costs import CostModel
from moebench.engine.offload import EngineOptions
from moebench.errors import ConfigError
from moebench.methods.offload import EngineMethod
from moebench.models.corpora import calibration_windows
from moebench.models.tensor_cache import cache_path, load_per_expert, save_per_expert, tokens_sha256
from moebench.prism.carve import (
    carve,
    expert_activations,
    partition_cost,
    partition_experts,
    set_active,
)
from moebench.prism.finetune import cached_finetune
from moebench.prism.gates import check_pattern, default_pattern, install_complex_gate
from moebench.prism.serving_costs import carved_shape, decode_point


class Prism(EngineMethod):
    def __init__(self, setup, loaded, costs):
        opt = setup.options
        n, method, gate, k_cost, iters = (
            opt.n,
            opt.partition,
            opt.gate,
            opt.resolved_k_cost,
            opt.iters,
        )
        k_orig = loaded.hf_config.num_experts_per_tok
        active = n * k_orig if opt.active_k is None else opt.active_k
        if opt.slo_experts is not None:  # a quality floor in experts: N x it, rounded up
            active = math.ceil(n * opt.slo_experts - 1e-9)
        if not 1 <= active <= n * k_orig:
            raise ConfigError("method.options.active_k", active, f"an integer in 1..{n * k_orig}")
        windows = calibration_windows(loaded, 16, 128, seed=5)
        acts = self._activations(loaded, windows)  # cached; every partition reports its objective
        parts, self.curves = self._partition(loaded, windows, acts, n, k_cost, method, iters)
        original_config = loaded.hf_config
        carved = carve(loaded, parts, n)
        self.prism = {
            "n": n,
            "partition": method,
            "k_cost": k_cost,
            "iters": iters,
            "active_k": active,
            "active_in_original_experts": active / n,
            "partition_cost": partition_cost(loaded, acts, parts, n, k_cost) if acts else None,
        }
        if gate == "cg":
            pattern = check_pattern(
                list(opt.cg_pattern or default_pattern(active, k_orig, n)), k_orig, n
            )
            if sum(pattern) != active:
                raise ConfigError(
                    "method.options.cg_pattern", pattern, f"counts summing to active_k={active}"
                )
            install_complex_gate(carved, original_config, parts, acts, n, pattern)
            self.prism |= {
                "gate": "CG",
                "cg_pattern": pattern,
                "gate_neurons": 4,
                "active_frac": 0.75,
            }
        elif gate == "lg_ft":
            steps, lr = opt.ft_steps, opt.ft_lr
            k1, k2 = min(8, n * k_orig), n * k_orig
            train = calibration_windows(loaded, 256, 128, seed=11)
            losses, skipped = cached_finetune(carved, train, steps, lr, k1, k2)
            set_active(carved, active)
            self.prism |= {
                "gate": "LG w/ FT",
                "ft_steps": steps,
                "ft_lr": lr,
                "ft_k": [k1, k2],
                "ft_loss_first_last": [losses[0], losses[-1]],
                "ft_skipped_steps": skipped,
                "ft_max_grad_norm": 1.0,
            }
        else:
            set_active(carved, active)
            self.prism |= {"gate": "LG w/o FT"}
        loaded.model, loaded.hf_config, loaded.layers = (
            carved.model,
            carved.hf_config,
            carved.layers,
        )
        self.active = active
        super().__init__(setup, loaded, CostModel(costs.hw, carved_shape(costs.shape, n)))

    def resident(self):
        return self.setup.budget_gb is None

    def engine_options(self, shape):
        if self.resident():
            return EngineOptions(slots_per_layer=shape.num_experts), 0.0, None
        return EngineOptions(slots_per_layer=0, policy=self.opt.policy), 0.0, self.active

    @staticmethod
    def _activations(loaded, windows) -> dict[int, dict[int, torch.Tensor]]:
        """Calibration statistics (|SiLU(x W_gate) * (x W_up)| per expert over the tokens routed
        to it), cached by (model weights hash, calibration tokens hash)."""
        path = cache_path(f"{loaded.name}-acts", [loaded.weights_sha256, tokens_sha256(windows)])
        if path.exists():
            return load_per_expert(path)[0]
        acts = expert_activations(loaded, windows)
        save_per_expert(path, acts)
        return acts

    @staticmethod
    def _partition(loaded, windows, acts, n, k_cost, method, iters):
        """Partitions (and annealing cost curves), cached by model, calibration tokens and
        options."""
        path = cache_path(
            loaded.name, [loaded.weights_sha256, tokens_sha256(windows), n, k_cost, method, iters]
        )
        if path.exists():
            parts, extra = load_per_expert(path)  # files from before the curves were kept lack them
            return parts, {k.removeprefix("curve/"): t.tolist() for k, t in extra.items()}
        parts, curves = partition_experts(loaded, acts, n, k_cost, method, iters)
        save_per_expert(
            path,
            {layer: {e: g.to(torch.int64) for e, g in ps.items()} for layer, ps in parts.items()},
            {f"curve/{k}": torch.tensor(c, dtype=torch.float64) for k, c in curves.items()},
        )
        return parts, curves

    def details(self):
        """The annealing record: the first expert's cost curve (sampled; the last entry is the
        best seen) and, over all experts, the greedy start's cost against the best found."""
        curves = self.curves
        anneal = {}
        if curves:
            # fsum: the same bits whether the curves came fresh or from the cache (another order)
            start = math.fsum(c[0] for c in curves.values())
            best = math.fsum(c[-1] for c in curves.values())
            anneal = {
                "anneal_cost_greedy_total": start,
                "anneal_cost_best_total": best,
                "anneal_improvement_frac": 1 - best / start if start else 0.0,
            }
        first = next(iter(curves.values()), [])
        return super().details() | {
            "prism": self.prism | anneal,
            "cost_curve_first_expert": first,
            "operating_point": decode_point(self.costs, self.active),
        }
