"""The one sampling temperature every proxy decodes at in speed experiments, chosen by
holding proxy_mixtral8x7b's own sampled output against the real Mixtral-8x7B trace.

For each temperature of a grid, the proxy continues held-out prompts on the noise tape and
we compare what an expert cache lives on: consecutive-token reuse, distinct experts among
2/4/8 consecutive tokens, and a cold per-layer LRU's hits at 2/4/6 slots. The temperature
with the smallest worst relative error wins; `python -m moebench.tools.temperature` writes
the whole comparison to reports/proxies/temperature.{json,md}.
"""

from __future__ import annotations

import json
from pathlib import Path

GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)


def observables(stats: dict) -> dict[str, float]:
    """The numbers compared with the real trace, from `routing_stats.layer_stats`."""
    out = {"reuse": stats["reuse_rate_mean"]}
    out |= {f"distinct in {n}": stats["distinct_experts_in_window"][n] for n in ("2", "4", "8")}
    out |= {f"LRU hits @{c}": stats["lru_hit_frac_mean"][c] for c in ("2", "4", "6")}
    return out


def relative_errors(proxy: dict[str, float], real: dict[str, float]) -> dict[str, float]:
    return {k: (proxy[k] - real[k]) / real[k] for k in real}


# Worst errors closer than this are not told apart by 2 x 256 sampled tokens (neighbouring
# temperatures above 0.9 move them by 1-2 points in either direction).
NOISE = 0.03


def worst_error(row: dict) -> float:
    return max(abs(e) for e in row["errors"].values())


def choose(rows: list[dict]) -> float:
    """Among the temperatures whose worst |relative error| is within NOISE of the best, the
    one closest to 1 (sampling the model's own distribution, undistorted)."""
    best = min(worst_error(r) for r in rows)
    close = [r for r in rows if worst_error(r) <= best + NOISE]
    return min(close, key=lambda r: (abs(r["temperature"] - 1.0), r["temperature"]))["temperature"]


def sweep(grid=GRID) -> dict:
    from moebench.bench.routing_stats import layer_stats, read_mixtral_trace
    from moebench.config import ModelConfig
    from moebench.models.corpora import encoded_splits, load_corpus
    from moebench.models.train import load_proxy
    from moebench.paths import MIXTRAL_TRACE
    from moebench.tools.cards import generated_routing

    real = observables(layer_stats(read_mixtral_trace(MIXTRAL_TRACE), 8))
    loaded = load_proxy(
        ModelConfig(
            name="proxy_mixtral8x7b", family="mixtral", source="proxy", proxy_of="mixtral8x7b"
        )
    )
    _, valid = encoded_splits(load_corpus(), loaded.tokenizer)
    rows = []
    for t in [None, *grid]:
        proxy = observables(layer_stats(generated_routing(loaded, valid, temperature=t), 8))
        rows.append(
            {"temperature": t, "observables": proxy, "errors": relative_errors(proxy, real)}
        )
    sampled = [r for r in rows if r["temperature"] is not None]
    return {
        "real_trace": real,
        "rows": rows,
        "chosen": choose(sampled),
        "noise": NOISE,
        "proxy_weights_sha256": loaded.weights_sha256,
    }


def markdown(result: dict) -> str:
    real = result["real_trace"]
    keys = list(real)
    lines = [
        "# Default sampling temperature",
        "",
        "Chosen by `python -m moebench.tools.temperature`: proxy_mixtral8x7b (weights "
        f"`{result['proxy_weights_sha256'][:16]}`) continues 2 held-out prompts by 256 tokens at "
        "each temperature on the noise tape; its routing is compared with the real Mixtral-8x7B "
        "HumanEval trace (../shared/data/moe_routing_traces, 333 tokens x 32 layers). Of the "
        f"temperatures whose worst relative error is within {NOISE:.0%} of the best (closer is "
        "noise at 512 sampled tokens), the one closest to 1 (the model's own distribution, "
        f"undistorted) is the default for every proxy: **T = {result['chosen']}**.",
        "",
        "| decoding | " + " | ".join(keys) + " | worst error |",
        "|---|" + "---:|" * (len(keys) + 1),
        "| real Mixtral trace | " + " | ".join(f"{real[k]:.3f}" for k in keys) + " | - |",
    ]
    for r in result["rows"]:
        label = "greedy" if r["temperature"] is None else f"T = {r['temperature']}"
        cells = [f"{r['observables'][k]:.3f} ({r['errors'][k]:+.0%})" for k in keys]
        lines.append(
            f"| {label} | "
            + " | ".join(cells)
            + f" | {max(abs(e) for e in r['errors'].values()):.0%} |"
        )
    return "\n".join(lines) + "\n"


def rewrite_markdown(out: str | Path) -> Path:
    """Re-choose and re-render from the saved sweep (no model runs)."""
    path = Path(out) / "temperature.json"
    result = json.loads(path.read_text())
    result["chosen"] = choose([r for r in result["rows"] if r["temperature"] is not None])
    result["noise"] = NOISE
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (Path(out) / "temperature.md").write_text(markdown(result))
    return path


def write(out: str | Path) -> list[Path]:
    from moebench.determinism import fixed_threads

    with fixed_threads(1):
        result = sweep()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "temperature.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (out / "temperature.md").write_text(markdown(result))
    return [out / "temperature.json", out / "temperature.md"]


def main(argv: list[str] | None = None) -> None:
    """`python -m moebench.tools.temperature [--out DIR]`: choose the default temperature."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m moebench.tools.temperature", description=__doc__
    )
    parser.add_argument("--out", default="reports/proxies")
    for path in write(parser.parse_args(argv).out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
