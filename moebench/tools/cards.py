"""Proxy cards: what each proxy is, how it was trained, how good it is, and how realistic
its routing is, as JSON and markdown under reports/proxies/ (`python -m moebench.tools.cards`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from moebench.bench.routing_stats import layer_stats, read_mixtral_trace
from moebench.bench.sampling import DEFAULT_TEMPERATURE
from moebench.config import ModelConfig
from moebench.determinism import fixed_threads, kernels_text
from moebench.models.catalog import real_model, real_model_shape
from moebench.models.corpora import encoded_splits, load_corpus
from moebench.models.families import RoutingRecorder
from moebench.models.proxies import PROXIES
from moebench.models.shape import shape_from_hf_config
from moebench.models.train import ensure_proxy, load_proxy
from moebench.paths import MIXTRAL_TRACE

WINDOWS, WINDOW_LEN = 8, 128


@torch.no_grad()
def heldout_routing(loaded, valid_ids: np.ndarray) -> list[np.ndarray]:
    """Routing of evenly spaced held-out windows: one [T, L_moe, k] array per window."""
    starts = np.linspace(0, len(valid_ids) - WINDOW_LEN - 1, WINDOWS).astype(int)
    sequences = []
    with RoutingRecorder(loaded.layers) as recorder:
        for s in starts:
            x = torch.from_numpy(valid_ids[s : s + WINDOW_LEN].astype(np.int64)).unsqueeze(0)
            loaded.model(input_ids=x)
            routing = recorder.take()
            sequences.append(
                np.stack([routing[layer.index].numpy() for layer in loaded.layers], axis=1)
            )
    return sequences


@torch.no_grad()
def generated_routing(
    loaded,
    valid_ids: np.ndarray,
    prompts: int = 2,
    new_tokens: int = 256,
    temperature: float | None = None,
) -> list[np.ndarray]:
    """Routing of the proxy's own continuations (what decode benchmarks see): greedy, or
    sampled on the noise tape at `temperature`."""
    from moebench.bench.decode import decode
    from moebench.bench.sampling import GREEDY, TokenChooser

    sequences = []
    for i, s in enumerate(np.linspace(0, len(valid_ids) - 65, prompts).astype(int)):
        steps = []
        prompt = torch.from_numpy(valid_ids[s : s + 64].astype(np.int64)).unsqueeze(0)
        chooser = (
            GREEDY if temperature is None else TokenChooser("sample", temperature, seed=0, prompt=i)
        )
        decode(loaded, prompt, new_tokens, on_step=steps.append, chooser=chooser)
        sequences.append(
            np.stack(
                [
                    np.concatenate([st.routing[v.index].numpy() for st in steps[1:]])
                    for v in loaded.layers
                ],
                axis=1,
            )
        )
    return sequences


def _sizes(shape) -> dict:
    return {
        "layers": shape.num_layers,
        "moe_layers": len(shape.moe_layers),
        "first_moe_layer": shape.moe_layers[0],
        "experts": shape.num_experts,
        "top_k": shape.top_k,
        "hidden": shape.hidden,
        "expert_intermediate": shape.expert_intermediate,
        "shared_intermediate": shape.shared_intermediate,
        "params_total": shape.total_params(),
        "params_active": shape.active_params(),
    }


def build_card(name: str) -> dict:
    spec = PROXIES[name]
    folder = ensure_proxy(name)
    loaded = load_proxy(
        ModelConfig(name=name, family=spec.family, source="proxy", proxy_of=spec.proxy_of)
    )
    training = json.loads((folder / "training.json").read_text())
    _, valid_ids = encoded_splits(load_corpus(), loaded.tokenizer)
    stats = layer_stats(heldout_routing(loaded, valid_ids), loaded.layers[0].num_experts)
    generated = layer_stats(generated_routing(loaded, valid_ids), loaded.layers[0].num_experts)
    sampled = layer_stats(
        generated_routing(loaded, valid_ids, temperature=DEFAULT_TEMPERATURE),
        loaded.layers[0].num_experts,
    ) | {"temperature": DEFAULT_TEMPERATURE}
    real = real_model(spec.base)
    card = {
        "proxy": name,
        "family": spec.family,
        "base": spec.base,
        "base_hf_id": real.hf_id,
        "proxy_of": spec.proxy_of,
        "config_source": real.source,
        "proxy_sizes": _sizes(shape_from_hf_config(loaded.hf_config)),
        "real_sizes": _sizes(real_model_shape(spec.base)),
        "recipe": asdict(spec.recipe),
        "training": {
            k: training.get(k)
            for k in (
                "train_tokens",
                "train_seconds",
                "tokens_per_sec",
                "aux_loss_coef",
                "train_split_tokens",
                "valid_split_tokens",
                "torch",
                "torch_threads",
                "cpu",
                "numerics",
            )
        },
        "quality": {
            "valid_perplexity": training["valid_perplexity"],
            "unigram_perplexity": training["unigram_perplexity"],
            "ratio_to_unigram": training["valid_perplexity"] / training["unigram_perplexity"],
        },
        "routing_heldout": stats,
        "routing_generated": generated,
        "routing_sampled": sampled,
        "weights_sha256": loaded.weights_sha256,
    }
    if spec.base == "mixtral8x7b" and spec.proxy_of and MIXTRAL_TRACE.exists():
        card["routing_real_trace"] = layer_stats(read_mixtral_trace(MIXTRAL_TRACE), 8) | {
            "source": "Mixtral-8x7B-Instruct (FP8, vLLM) HumanEval problems 0-1, "
            "shared/data/moe_routing_traces (SOURCES.md 3a)"
        }
    return card


def _fmt_row(label: str, values) -> str:
    return f"| {label} | " + " | ".join(values) + " |"


def card_markdown(card: dict) -> str:
    p, r = card["proxy_sizes"], card["real_sizes"]
    q, t, rt = card["quality"], card["training"], card["routing_heldout"]
    lines = [
        f"# {card['proxy']}: proxy of {card['base_hf_id']}",
        "",
        f"Family `{card['family']}`. Real sizes from {card['config_source']}. The virtual clock "
        "charges "
        + (f"`{card['proxy_of']}`" if card["proxy_of"] else "the proxy itself (reduced proxy)")
        + ".",
        "Regenerate with `python -m moebench.tools.cards`.",
        "",
        "| | proxy | real model |",
        "|---|---:|---:|",
    ]
    for key in (
        "layers",
        "moe_layers",
        "first_moe_layer",
        "experts",
        "top_k",
        "hidden",
        "expert_intermediate",
        "shared_intermediate",
    ):
        lines.append(_fmt_row(key, [str(p[key]), str(r[key])]))
    lines.append(
        _fmt_row(
            "params total", [f"{p['params_total'] / 1e6:.2f} M", f"{r['params_total'] / 1e9:.2f} B"]
        )
    )
    lines.append(
        _fmt_row(
            "params active",
            [f"{p['params_active'] / 1e6:.2f} M", f"{r['params_active'] / 1e9:.2f} B"],
        )
    )
    lines += [
        "",
        "## Training (offline Shakespeare, byte-level BPE)",
        "",
        f"- Recipe: {card['recipe']}",
        f"- {t['train_tokens']:,} training tokens in {t['train_seconds']:.0f} s "
        f"({t['tokens_per_sec']:.0f} tokens/s; wall time depends on what else ran on the machine); "
        f"train split {t['train_split_tokens']:,} tokens, held-out split "
        f"{t['valid_split_tokens']:,}.",
        f"- Bits: torch {t['torch']} at a fixed {t.get('torch_threads') or 'unrecorded'} intra-op "
        "thread(s) "
        f"(the recipe's, whatever the machine has), kernels {kernels_text(t.get('numerics'))}, on "
        f"{_cpu_text(t.get('cpu'))}; weights sha256 `{card['weights_sha256'][:16]}`. "
        + (
            "Pinned kernels give these bits on any x86-64 CPU with the same torch build."
            if (t.get("numerics") or {}).get("pinned")
            else "Kernels were not pinned: another CPU family may train a proxy of equal quality "
            "with other bits."
        ),
        f"- Held-out perplexity **{q['valid_perplexity']:.1f}** against the unigram perplexity "
        f"{q['unigram_perplexity']:.1f} of the same split: ratio **{q['ratio_to_unigram']:.2f}** "
        "(target <= 0.5).",
        "",
        f"## Routing on held-out text ({rt['tokens']} tokens)",
        "",
        "Load entropy: share of routing slots per expert, in bits (uniform = "
        f"{rt['max_entropy_bits']:.2f}). "
        f"Reuse: share of a token's {rt['top_k']} experts that the previous token also used "
        f"(independent uniform routing = {rt['reuse_rate_if_random']:.3f}).",
        "",
    ]
    sources = [
        ("proxy (held-out text)", rt),
        ("proxy (own greedy output)", card["routing_generated"]),
    ]
    if "routing_real_trace" in card:
        sources.append(("real Mixtral trace", card["routing_real_trace"]))
    lines.append("| | " + " | ".join(f"{s} entropy | {s} reuse" for s, _ in sources) + " |")
    lines.append("|---:|" + "---:|---:|" * len(sources))
    for i in range(len(rt["load_entropy_bits"])):
        cells = []
        for _, st in sources:
            cells += [f"{st['load_entropy_bits'][i]:.2f}", f"{st['reuse_rate'][i]:.3f}"]
        lines.append(_fmt_row(f"MoE layer {i}", cells))
    cells = []
    for _, st in sources:
        cells += [f"{st['load_entropy_frac_mean']:.3f} of max", f"{st['reuse_rate_mean']:.3f}"]
    lines.append(_fmt_row("mean", cells))
    lines += [
        "",
        "The proxy's own greedy output is more repetitive than real text (its continuations loop), "
        "so greedy decode benchmarks on this proxy see more reuse than a real model; the speed "
        "experiments therefore sample (next section).",
    ]
    lines += cache_view_lines(card)
    if "routing_real_trace" in card:
        lines += [
            "",
            f"Real trace: {card['routing_real_trace']['source']}, "
            f"{card['routing_real_trace']['tokens']} tokens with all 32 layers.",
        ]
    return "\n".join(lines) + "\n"


def _cpu_text(cpu: dict | None) -> str:
    if not cpu:
        return "an unrecorded CPU"
    return f"{cpu['model']} ({cpu['isa']})"


def cache_view_lines(card: dict) -> list[str]:
    """What an expert cache sees, per source: reuse, the union curve, LRU hits, balance."""
    t = card.get("routing_sampled", {}).get("temperature")
    sources = [
        ("held-out text (teacher-forced)", card["routing_heldout"]),
        ("own greedy output", card["routing_generated"]),
    ]
    if "routing_sampled" in card:
        sources.append((f"own sampled output, T = {t}", card["routing_sampled"]))
    if "routing_real_trace" in card:
        sources.append(("real Mixtral-8x7B trace", card["routing_real_trace"]))
    if "distinct_experts_in_window" not in card["routing_heldout"]:
        return []
    lines = [
        "",
        "## What an expert cache sees",
        "",
        "Reuse as above; distinct experts per layer among n consecutive tokens (what a verify of n "
        "tokens loads); a cold per-layer LRU's hit fraction at 2/4/6 slots, where a token needs "
        "all its experts at once (- where the slots are fewer than top-k); load entropy as a "
        "fraction of uniform.",
        "",
        "| source | reuse | distinct in 1 / 2 / 4 / 8 | LRU hits @2 / @4 / @6 | entropy |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, st in sources:
        union = " / ".join(
            f"{st['distinct_experts_in_window'][n]:.2f}" for n in ("1", "2", "4", "8")
        )
        lru = " / ".join("-" if v is None else f"{v:.3f}" for v in st["lru_hit_frac_mean"].values())
        lines.append(
            f"| {label} | {st['reuse_rate_mean']:.3f} | {union} | {lru} | "
            f"{st['load_entropy_frac_mean']:.3f} |"
        )
    if "routing_sampled" in card:
        sampled, held = (
            card["routing_sampled"]["reuse_rate_mean"],
            card["routing_heldout"]["reuse_rate_mean"],
        )
        lines += [
            "",
            f"Sampled reuse against held-out reuse: {sampled / held - 1:+.0%} (goal: within 25%). "
            f"T = {t} is the one default for every proxy, chosen on proxy_mixtral8x7b against the "
            "real Mixtral trace (reports/proxies/temperature.md).",
        ]
    if "routing_real_trace" in card and "routing_sampled" in card:
        real, ours = card["routing_real_trace"], card["routing_sampled"]
        errs = [ours["reuse_rate_mean"] / real["reuse_rate_mean"] - 1]
        errs += [
            ours["distinct_experts_in_window"][n] / real["distinct_experts_in_window"][n] - 1
            for n in ("2", "4", "8")
        ]
        errs += [
            ours["lru_hit_frac_mean"][c] / real["lru_hit_frac_mean"][c] - 1 for c in ("2", "4", "6")
        ]
        lines += [
            "",
            "Against the real trace, the sampled output's reuse, union curve and LRU hits differ "
            f"by at most {max(abs(e) for e in errs):.0%} (goal: within 25%).",
        ]
    return lines


def write_cards(names: list[str], out: str | Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        with fixed_threads(1):  # routing statistics at fixed threads, like the training
            card = build_card(name)
        (out / f"{name}.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
        (out / f"{name}.md").write_text(card_markdown(card))
        written += [out / f"{name}.json", out / f"{name}.md"]
    return written


def main(argv: list[str] | None = None) -> None:
    """`python -m moebench.tools.cards [NAME ...] [--out DIR]`: regenerate the proxy cards."""
    import argparse

    from moebench.errors import UserError, exit_with

    parser = argparse.ArgumentParser(prog="python -m moebench.tools.cards", description=__doc__)
    parser.add_argument("names", nargs="*", help="proxies (default: all)")
    parser.add_argument("--out", default="reports/proxies")
    args = parser.parse_args(argv)
    try:
        for path in write_cards(args.names or list(PROXIES), args.out):
            print(f"wrote {path}")
    except UserError as err:
        exit_with(err)


if __name__ == "__main__":
    main()
