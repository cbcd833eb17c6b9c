"""Carve every routed expert into N sub-experts by a neuron partition, and re-gate with the
linear gate without fine-tuning (LG w/o FT, paper section 4.3).

A neuron j of a SwiGLU expert is row j of the gate and up projections and column j of the
down projection, so any partition is an exact decomposition: the expert's output is the sum
of its sub-experts' outputs. The new router repeats each parent's logit N times, so with all
N sub-experts of each chosen parent active (K = N k') the carved model computes the original
one. Each sub-expert's routing weight is its parent's divided by N (the softmax over N E
repeated logits, renormalised or not), while the N sub-experts together compute the parent's
output once; that factor N is folded into the sub-experts' down projections (the paper's
"scaling factor N"), except for DeepSeek, whose routed_scaling_factor is multiplied by N.
"""

from __future__ import annotations

import math

import torch
import transformers

from moebench.errors import UserError
from moebench.models.families import FAMILIES, moe_layers
from moebench.models.loaded import LoadedModel, weights_sha256
from moebench.prism.gates import LinearGate
from moebench.prism.partition import (
    anneal,
    balanced_kmeans,
    contiguous_partition,
    cost,
    greedy,
    group_mass,
    random_partition,
)
from moebench.speq.draft import calibration_inputs

CARVABLE = tuple(name for name, rules in FAMILIES.items() if rules.carvable)
PARTITIONS = ("anneal", "random", "contiguous", "kmeans")


@torch.no_grad()
def expert_activations(
    loaded: LoadedModel, windows: list[torch.Tensor]
) -> dict[int, dict[int, torch.Tensor]]:
    """|SiLU(x W_gate) * (x W_up)| over the calibration tokens the router sent to each expert."""
    acts = {}
    for layer, per_expert in calibration_inputs(loaded, windows).items():
        ex = next(v.experts for v in loaded.layers if v.index == layer)
        acts[layer] = {}
        for e, x in per_expert.items():
            gate, up = (x @ ex.gate_up_proj[e].T).chunk(2, dim=-1)
            acts[layer][e] = (ex.act_fn(gate) * up).abs()
    return acts


def partition_experts(
    loaded: LoadedModel, acts, n: int, k: int, method: str, iters: int, seed: int = 0
) -> tuple[dict[int, dict[int, torch.Tensor]], dict[str, list[float]]]:
    """A partition (neuron -> group) per expert, and the annealing cost curves."""
    parts, curves = {}, {}
    for view in loaded.layers:
        width = view.experts.down_proj.shape[-1]
        if width % n:
            raise UserError(f"expert width {width} is not divisible by method.options.n={n}")
        parts[view.index] = {}
        for e in range(view.num_experts):
            a = acts.get(view.index, {}).get(e)
            if method == "contiguous":
                parts[view.index][e] = contiguous_partition(width, n)
            elif method == "random" or a is None or len(a) == 0:  # an expert no token reached
                parts[view.index][e] = random_partition(width, n, seed + e)
            elif method == "kmeans":
                parts[view.index][e] = balanced_kmeans(a, n, seed=seed + e)
            else:  # greedy + simulated annealing
                best, curve = anneal(a, greedy(a, n), n, k, iters, seed=seed + e)
                parts[view.index][e] = best
                curves[f"{view.index}.{e}"] = curve[:: max(1, len(curve) // 50)] + [
                    min(curve)
                ]  # last: best
    return parts, curves


def partition_cost(loaded: LoadedModel, acts, parts, n: int, k: int) -> float:
    """The objective summed over every expert: the L1 mass each calibration token leaves in
    its K smallest groups, as a fraction of its total mass (lower is better). Summed with
    math.fsum: exact whatever order the experts come in (a cached partition loads them in
    another order than a fresh one, which changed the last bits)."""
    left, total = [], []
    for layer, per_expert in acts.items():
        for e, a in per_expert.items():
            if len(a):
                left.append(cost(group_mass(a, parts[layer][e], n), k))
                total.append(float(a.double().sum()))
    return math.fsum(left) / math.fsum(total) if total else float("nan")


def carved_config(config, family: str, n: int, pad: int = 0):
    """The config rewrite: experts x N, top-k x N, expert width / N (paper section 1.1), plus
    `pad` zero neurons per sub-expert (see `carve`)."""
    c = config.to_dict()
    rules = FAMILIES[family]
    c[rules.experts_key] = c[rules.experts_key] * n
    c["num_experts_per_tok"] = c["num_experts_per_tok"] * n
    width_key = "moe_intermediate_size" if "moe_intermediate_size" in c else "intermediate_size"
    c[width_key] = c[width_key] // n + pad
    if rules.router_scaling:
        c["routed_scaling_factor"] = c["routed_scaling_factor"] * n
    if rules.shared_count_key:  # shared experts are expert-wide: their count keeps their width
        c[rules.shared_count_key] = c[rules.shared_count_key] * n
    c.pop("transformers_version", None)
    return type(config).from_dict(c)


@torch.no_grad()
def carve(loaded: LoadedModel, parts, n: int) -> LoadedModel:
    """A new LoadedModel whose routed experts are the sub-experts, with the LG w/o FT router."""
    family = loaded.family
    if not FAMILIES[family].carvable:
        raise UserError(f"model.family={family} cannot be carved; one of {', '.join(CARVABLE)}")
    dtype = next(loaded.model.parameters()).dtype
    width = loaded.layers[0].experts.down_proj.shape[-1]
    # torch's grouped_mm needs 16-byte rows: pad narrow sub-experts with zero neurons (a zero
    # gate and up row give a zero activation, a zero down column adds nothing: still exact)
    pad = -(width // n) % (16 // dtype.itemsize)
    config = carved_config(loaded.hf_config, family, n, pad)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    state = dict(loaded.model.state_dict())
    fold = FAMILIES[family].fold(n)  # a scaling router (DeepSeek) scales instead
    for view in loaded.layers:
        prefix = f"model.layers.{view.index}.mlp."
        gate_up, down = view.experts.gate_up_proj, view.experts.down_proj
        zero_rows = gate_up.new_zeros(pad, gate_up.shape[-1])
        zero_cols = down.new_zeros(down.shape[1], pad)
        new_gu, new_down = [], []
        for e in range(view.num_experts):
            groups = parts[view.index][e]
            for g in range(n):
                idx = torch.nonzero(groups == g).flatten()
                new_gu.append(
                    torch.cat(
                        [gate_up[e, :width][idx], zero_rows, gate_up[e, width:][idx], zero_rows]
                    )
                )
                new_down.append(torch.cat([down[e][:, idx] * fold, zero_cols], dim=1))
        state[prefix + "experts.gate_up_proj"] = torch.stack(new_gu)
        state[prefix + "experts.down_proj"] = torch.stack(new_down)
        router_key = prefix + FAMILIES[family].router_attr + ".weight"
        state[router_key] = state[router_key].repeat_interleave(n, dim=0)
    model.load_state_dict(state)
    model.eval()
    for layer in moe_layers(model, family):  # LG w/o FT with index-order tie-breaking
        router = LinearGate(layer.router.weight, family, config, config.num_experts_per_tok)
        setattr(layer.block, FAMILIES[family].router_attr, router)
    return LoadedModel(
        f"{loaded.name}-prism{n}",
        family,
        model,
        config,
        moe_layers(model, family),
        weights_sha256(model),
        loaded.tokenizer,
    )


def set_active(loaded: LoadedModel, k: int) -> None:
    """Route every token to K sub-experts (LG keeps the top K of the N E logits)."""
    for view in loaded.layers:
        view.router.top_k = k
