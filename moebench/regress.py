"""`python -m moebench.regress`: rerun a reduced set of experiments under the virtual clock
and compare their key ratios with committed golden values (tests/golden/regress.json).

Ratios, not absolute times, are compared: each method's TPOT over `full_resident`'s and
expert hit fractions, on the small CI proxy (trained in seconds), plus cache-policy hit
rates on the real Mixtral trace when ../shared/data is present. On failure it prints a
table of what moved and by how much, and exits 1. `--update` rewrites the golden file.

Kernels are pinned (moebench/determinism.py), so on any x86-64 CPU the same torch build
trains proxy_ci to the same bits and every key comes out the same: keys are compared exactly.
Measured on one machine across ATen's default, AVX2 and AVX-512 kernels and MKL's AVX2 path
(tests/integration/test_any_cpu.py), the pinned spread is zero; unpinned, the same keys moved by
up to 0.04 in hit fraction and 10% in perplexity ratio, which no tolerance could absorb
without also hiding a real regression. The weights' sha256, torch build and kernels are
stored beside the golden values and checked first: a different hash (another torch build,
or unpinned kernels) is said in one line before comparing. Then the tolerances come from a
measured spread, not from a choice: each key may move as far as it moves across proxy_ci
retrained with seeds 1-4 (`--spread` measures it into tests/golden/regress_spread.json; e.g.
0.053 in LRU hit fraction, 0.010 in sampled MoE-SpeQ over sm, 0 for keys no weight touches).
`--quick` runs the subset that the any-CPU test repeats under several kernel sets.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from functools import partial
from pathlib import Path

from moebench.cli import compose_run_config
from moebench.determinism import kernels_text
from moebench.paths import MIXTRAL_TRACE, REPO_ROOT
from moebench.schema import RunRecord, load_record

GOLDEN = REPO_ROOT / "tests" / "golden" / "regress.json"
GOLDEN_WEIGHTS = REPO_ROOT / "tests" / "golden" / "proxy_ci_weights.json"
# Each key's spread over proxy_ci retrained with other seeds (`--spread` measures it): the
# tolerance when this machine's proxy_ci is not the golden one (another torch build).
GOLDEN_SPREAD = REPO_ROOT / "tests" / "golden" / "regress_spread.json"
SPREAD_SEEDS = (1, 2, 3, 4)
PROXY_METHODS = [
    "full_resident",
    "hf_offload",
    "ondemand",
    "mixtral_offloading",
    "next_layer_prefetch",
]
SLOTS = 3  # of proxy_ci's 8 experts per layer: forces misses, keeps reuse


def ci_budget_gb(max_tokens: int, with_draft: bool = False) -> float:
    """The budget (GB) at which exactly SLOTS experts per layer of proxy_ci fit (next to
    MoE-SpeQ's INT4 draft when `with_draft`)."""
    from moebench.engine.budget import budget_gb_for_slots, int4_expert_bytes
    from moebench.models.loaded import hf_config_for
    from moebench.models.proxies import PROXIES, proxy_arch
    from moebench.models.shape import shape_from_hf_config

    spec = PROXIES["proxy_ci"]
    shape = shape_from_hf_config(hf_config_for(spec.family, proxy_arch(spec)))
    draft = (
        int4_expert_bytes(shape) * shape.num_experts * len(shape.moe_layers) if with_draft else 0.0
    )
    return budget_gb_for_slots(shape, SLOTS + 0.5, max_tokens, draft)


def _run(results: Path, overrides: list[str]) -> RunRecord:
    from moebench.runner import execute

    path = execute(
        compose_run_config([f"results_dir={results}", "+experiment=regress", *overrides])
    )
    return load_record(path)


def _proxy_ci(
    results: Path, method: str, budget: float, *extra: str, train_seed: int = 0
) -> RunRecord:
    return _run(
        results,
        [
            "model=proxy_ci",
            f"model.train_seed={train_seed}",
            f"method={method}",
            f"method.budget_gb={budget}",
            "workload=heldout",
            *extra,
        ],
    )


def offload_ratios(results: Path, train_seed: int = 0) -> dict:
    """Each offloading method's TPOT over full_resident's and its hit fraction, at SLOTS
    experts per layer (and `WEIGHTS_KEY`: proxy_ci's weights identity)."""
    budget = ci_budget_gb(max_tokens=64)  # workload=heldout: 32-token prompts + 32 new
    records = {m: _proxy_ci(results, m, budget, train_seed=train_seed) for m in PROXY_METHODS}
    out = {
        WEIGHTS_KEY: weights_identity(records["full_resident"]),
        "proxy_ci/mixtral_offloading/slots_per_layer": float(
            records["mixtral_offloading"].method_details["memory_plan"]["slots_per_layer"]
        ),
    }
    base = records["full_resident"].metrics["tpot_sec_mean"]
    for m, r in records.items():
        if m != "full_resident":
            out[f"proxy_ci/{m}/tpot_over_full_resident"] = r.metrics["tpot_sec_mean"] / base
            out[f"proxy_ci/{m}/expert_hit_frac"] = r.metrics["expert_hit_frac"]
    return out


def speq_ratios(results: Path, train_seed: int = 0) -> dict:
    """MoE-SpeQ over Mixtral-Offloading (sc and sm) at the same budget, greedy and sampled."""
    budget = ci_budget_gb(max_tokens=64, with_draft=True)
    greedy = {
        m: _proxy_ci(results, m, budget, train_seed=train_seed)
        for m in ("speq", "mixtral_offloading_sc", "mixtral_offloading_sm")
    }
    out = {
        f"proxy_ci/speq/speedup_over_{base}": (
            greedy[base].metrics["tpot_sec_mean"] / greedy["speq"].metrics["tpot_sec_mean"]
        )
        for base in ("mixtral_offloading_sc", "mixtral_offloading_sm")
    }
    out["proxy_ci/speq/expert_hit_frac"] = greedy["speq"].metrics["expert_hit_frac"]
    out["proxy_ci/speq/draft_accept_frac"] = greedy["speq"].metrics["draft_accept_frac"]
    sampled = {
        m: _proxy_ci(results, m, budget, "workload.decoding=sample", train_seed=train_seed)
        for m in ("speq", "mixtral_offloading_sm")
    }
    out["proxy_ci/speq_sampled/speedup_over_mixtral_offloading_sm"] = (
        sampled["mixtral_offloading_sm"].metrics["tpot_sec_mean"]
        / sampled["speq"].metrics["tpot_sec_mean"]
    )
    out["proxy_ci/speq_sampled/draft_accept_frac"] = sampled["speq"].metrics["draft_accept_frac"]
    out["proxy_ci/mixtral_offloading_sm_sampled/expert_hit_frac"] = sampled[
        "mixtral_offloading_sm"
    ].metrics["expert_hit_frac"]
    return out


def trace_hit_fracs(results: Path, train_seed: int = 0) -> dict:
    """Cache-policy hit fractions on the real Mixtral trace (when ../shared/data is here); no
    proxy runs, so `train_seed` changes nothing."""
    if not MIXTRAL_TRACE.exists():
        return {}
    out = {}
    for policy in ("lru", "lfu", "static", "belady"):
        r = _run(
            results,
            [
                "model=mixtral8x7b",
                "workload=trace_mixtral_humaneval",
                "method=mixtral_offloading",
                "method.budget_gb=60",
                f"method.options.policy={policy}",
            ],
        )
        out[f"mixtral_trace/{policy}@60GB/expert_hit_frac"] = r.metrics["expert_hit_frac"]
    return out


TOP1_PPL_KEY = "proxy_ci/topk/ppl_k1_over_original"
TOP1 = ["method=topk", "method.budget_gb=null", "method.options.top_k=1"]


def quick_prism_ratio(results: Path, train_seed: int = 0) -> dict:
    """Top-1 routing's held-out perplexity over the plain proxy's: one forward-only key that
    moved with the CPU before kernels were pinned."""
    ppl = partial(_ppl, results, train_seed=train_seed)
    return {TOP1_PPL_KEY: ppl(TOP1) / ppl(["method=full_resident"])}


def _ppl(results: Path, overrides: list[str], train_seed: int = 0) -> float:
    model = ["model=proxy_ci", f"model.train_seed={train_seed}"]
    record = _run(results, [*model, "eval=heldout", "eval.limit=1", *overrides])
    return record.eval["results"]["heldout_ppl"]["word_perplexity,none"]


def measure(quick: bool = False, train_seed: int = 0) -> dict[str, float]:
    """The key ratios, freshly computed (and `WEIGHTS_KEY`: proxy_ci's weights identity).
    `quick` (what the any-CPU test runs under several kernel sets): offloading, MoE-SpeQ and
    one perplexity ratio; the full set adds Prism and the real trace."""
    groups = (
        (offload_ratios, speq_ratios, quick_prism_ratio)
        if quick
        else (offload_ratios, speq_ratios, prism_ratios, trace_hit_fracs)
    )
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for group in groups:
            out |= group(Path(tmp), train_seed)
    return out


def prism_ratios(results: Path, train_seed: int = 0) -> dict[str, float]:
    """MoE-Prism (N = 4) on proxy_ci: held-out perplexity relative to the plain proxy (exact at
    K = N k' = 8; the half-compute point K = 4 for each gate, against the original K' = 1);
    decode latency of the sub-expert cache over whole-expert LRU at a 1.5-expert floor; and
    the cloud scheduler's goodput over FIFO at medium load (DeepSeek-V2-Lite sizes, 60 s)."""
    ppl = partial(_ppl, results, train_seed=train_seed)
    full = ppl(["method=full_resident"])
    out = {
        "proxy_ci/prism/ppl_k8_over_original": ppl(["method=prism", "method.options.active_k=8"])
        / full,
        "proxy_ci/prism/ppl_k4_over_original": ppl(["method=prism", "method.options.active_k=4"])
        / full,
        "proxy_ci/prism_cg/ppl_k4_over_original": ppl(
            ["method=prism", "method.options.active_k=4", "method.options.gate=cg"]
        )
        / full,
        "proxy_ci/prism_lg_ft/ppl_k4_over_original": ppl(
            [
                "method=prism",
                "method.options.active_k=4",
                "method.options.gate=lg_ft",
                "method.options.ft_steps=40",
            ]
        )
        / full,
        TOP1_PPL_KEY: ppl(TOP1) / full,
    }
    budget = ci_budget_gb(max_tokens=64)
    tpot = {
        m: _run(
            results,
            [
                "model=proxy_ci",
                f"model.train_seed={train_seed}",
                f"method={m}",
                f"method.budget_gb={budget}",
                "workload=heldout",
                "+method.options.slo_experts=1.5",
                "+method.options.fused_experts=true",
            ],
        ).metrics["tpot_sec_mean"]
        for m in ("topk", "prism")
    }
    out["proxy_ci/prism_offload/tpot_over_topk"] = tpot["prism"] / tpot["topk"]
    goodput = {
        p: _run(
            results,
            [
                "model=proxy_dsv2lite",
                "hardware=h800",
                "method=cloud",
                "workload=poisson_dsv2",
                "workload.arrivals.duration_sec=60",
                "workload.arrivals.rate_per_sec=20",
                f"method.options.policy={p}",
                f"method.options.granularity={'prism' if p == 'prism' else 'original'}",
            ],
        ).metrics["goodput_rps"]
        for p in ("fifo", "prism")
    }
    out["dsv2lite/prism_cloud/goodput_over_fifo"] = goodput["prism"] / goodput["fifo"]
    return out


WEIGHTS_KEY = "proxy_ci/weights"


def weights_identity(record: RunRecord) -> dict:
    """What made the weights a record ran: their hash, the torch build, the kernels that ran
    and the CPU (informative: pinned kernels make it irrelevant)."""
    numerics = record.env["numerics"]
    return {
        "weights_sha256": record.model.weights_sha256,
        "torch": record.env["versions"]["torch"],
        "cpu": record.env["cpu"],
        "kernels": {k: numerics[k] for k in ("pinned", "aten_capability", "mkl_branch")},
    }


def weights_note(measured: dict, golden: dict) -> str | None:
    """One line when this machine's proxy_ci is not the one the golden values were made with."""
    if measured["weights_sha256"] == golden["weights_sha256"]:
        return None
    causes = (
        [f"torch {golden['torch']} -> {measured['torch']}"]
        if measured["torch"] != golden["torch"]
        else []
    )
    want, got = golden.get("kernels"), measured.get("kernels")
    if want != got:
        causes.append(f"kernels {kernels_text(want)} -> {kernels_text(got)}")
    why = (
        "; ".join(causes)
        or "same torch build and pinned kernels, so a change in training or its inputs"
    )
    where = f"{golden['cpu']['model']} -> {measured['cpu']['model']}"
    return (
        f"moebench.regress: proxy_ci weights {measured['weights_sha256'][:12]} differ from the "
        f"golden values' {golden['weights_sha256'][:12]} (likely cause: {why}; CPU {where}); "
        "comparing anyway, and `make golden` makes new golden values"
    )


def tolerance(key: str) -> dict:
    """Exact for every key: with pinned kernels the measured spread across CPUs is zero (see
    the module docstring), so any change is a change of behaviour."""
    return {"abs": 0.0}


def measure_spread(golden: dict[str, dict], seeds=SPREAD_SEEDS) -> dict:
    """Every key on proxy_ci retrained with each of `seeds`, and its spread: the largest
    distance from the golden (seed 0) value. A key no proxy weight touches spreads by 0."""
    by_seed = {seed: measure(train_seed=seed) for seed in seeds}
    for values in by_seed.values():
        values.pop(WEIGHTS_KEY, None)
    keys = {}
    for key, gold in sorted(golden.items()):
        values = [by_seed[seed].get(key) for seed in seeds]
        if any(v is None for v in values):
            continue  # data not on this machine
        keys[key] = {
            "values": [gold["value"], *values],
            "spread": max(abs(v - gold["value"]) for v in values),
        }
    return {"seeds": [0, *seeds], "keys": keys}


def with_training_spread(golden: dict[str, dict], spread: dict) -> dict[str, dict]:
    """The golden values with each key's tolerance widened to its training spread: for a
    proxy_ci whose weights differ from the golden one, a key may move as far as retraining
    with another seed moves it, and no further."""
    out = {}
    for key, gold in golden.items():
        measured = spread["keys"].get(key)
        out[key] = gold | ({"abs": measured["spread"], "spread": True} if measured else {})
    return out


def compare(
    measured: dict[str, float], golden: dict[str, dict], unavailable: tuple[str, ...] = ()
) -> list[dict]:
    """One row per key: golden, measured, change, allowed, ok. Keys under a prefix in
    `unavailable` (their data is not on this machine) are reported as skipped."""
    rows = []
    for key in sorted(set(golden) | set(measured)):
        if key.startswith(unavailable) and key not in measured:
            rows.append(
                {
                    "key": key,
                    "golden": golden[key]["value"],
                    "measured": None,
                    "change": None,
                    "allowed": "skipped",
                    "ok": True,
                }
            )
            continue
        want, got = golden.get(key, {}).get("value"), measured.get(key)
        if want is None or got is None:
            rows.append(
                {
                    "key": key,
                    "golden": want,
                    "measured": got,
                    "change": None,
                    "allowed": "-",
                    "ok": False,
                }
            )
            continue
        tol = golden[key]
        if "rel" in tol:
            change, ok, allowed = (
                (got - want) / want,
                abs(got - want) <= tol["rel"] * abs(want),
                f"±{tol['rel']:.0%}",
            )
        else:
            allowed = "exact" if tol["abs"] == 0 else f"±{tol['abs']:.3g}"
            allowed += " (training)" if tol.get("spread") else ""
            change, ok = got - want, abs(got - want) <= tol["abs"]
        rows.append(
            {
                "key": key,
                "golden": want,
                "measured": got,
                "change": change,
                "allowed": allowed,
                "ok": ok,
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'key':55s} {'golden':>10s} {'measured':>10s} {'change':>9s} {'allowed':>8s}  ok"]
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        lines.append(
            f"{r['key']:55s} {fmt(r['golden']):>10s} {fmt(r['measured']):>10s} "
            f"{fmt(r['change']):>9s} {r['allowed']:>8s}  {'yes' if r['ok'] else 'NO'}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m moebench.regress", description=__doc__)
    parser.add_argument("--golden", default=str(GOLDEN))
    parser.add_argument("--update", action="store_true", help="rewrite the golden file")
    parser.add_argument(
        "--spread",
        action="store_true",
        help=f"measure every key on proxy_ci retrained with seeds {SPREAD_SEEDS} and write "
        "the tolerances used when proxy_ci's weights differ from the golden ones",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only the offloading, MoE-SpeQ and top-1 perplexity keys",
    )
    args = parser.parse_args(argv)
    if args.update and args.quick:
        parser.error("--update rewrites every key: run it without --quick")
    golden_path = Path(args.golden)
    if args.spread:
        spread = measure_spread(json.loads(golden_path.read_text()))
        spread_path = golden_path.with_name(GOLDEN_SPREAD.name)
        spread_path.write_text(json.dumps(spread, indent=2, sort_keys=True) + "\n")
        print(f"moebench.regress: wrote {spread_path}")
        return 0
    measured = measure(quick=args.quick)
    weights = measured.pop(WEIGHTS_KEY, None)
    weights_path = golden_path.with_name(GOLDEN_WEIGHTS.name)
    if args.update:
        golden_path.write_text(
            json.dumps(
                {k: {"value": v} | tolerance(k) for k, v in measured.items()},
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )
        weights_path.write_text(json.dumps(weights, indent=2, sort_keys=True) + "\n")
        print(f"moebench.regress: wrote {golden_path} and {weights_path}")
        return 0
    other_weights = False
    if weights is not None and weights_path.exists():
        note = weights_note(weights, json.loads(weights_path.read_text()))
        if note:
            print(note)
            other_weights = True
    unavailable = () if MIXTRAL_TRACE.exists() else ("mixtral_trace/",)
    if unavailable:
        print(f"moebench.regress: {MIXTRAL_TRACE} not found; trace keys skipped")
    golden = json.loads(golden_path.read_text())
    spread_path = golden_path.with_name(GOLDEN_SPREAD.name)
    if other_weights and spread_path.exists():
        print(
            "moebench.regress: other weights, so each key may move by its training spread "
            f"({spread_path.name})"
        )
        golden = with_training_spread(golden, json.loads(spread_path.read_text()))
    if args.quick:
        golden = {k: v for k, v in golden.items() if k in measured}
    rows = compare(measured, golden, unavailable)
    failed = [r for r in rows if not r["ok"]]
    print(table(failed if failed else rows))
    if failed:
        print(
            f"moebench.regress: {len(failed)} of {len(rows)} key ratios moved beyond tolerance",
            file=sys.stderr,
        )
        print(f"regress: {len(rows) - len(failed)} passed, {len(failed)} failed")
        return 1
    print(f"moebench.regress: all {len(rows)} key ratios within tolerance")
    print(f"regress: {len(rows)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
