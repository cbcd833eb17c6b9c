"""`python -m moebench.tools.sensitivity`: how much each headline ratio depends on each cost
parameter nobody has checked on a GPU.

Each headline is a pair of runs (method A over method B on the same sequences). Both are
rerun with one cost parameter of the hardware profile at half and at double its base value,
one parameter at a time: link bandwidth, link latency, per-layer host work, the routing
read-back, and kernel efficiency (peak FLOP/s and HBM bandwidth together). The base point is
the profile plus the sourced host terms of conf/hardware/host_terms.yaml; the profile as the
committed records ran it (no host terms) is one more point. Methods whose routing does not
depend on the cache replay their point's recording; MoE-SpeQ runs live (its governor reads
the cost model, so its decisions move with the parameters). Records go to
results/sensitivity/; `python -m moebench.report` writes reports/sensitivity.md with a
tornado figure per headline and says which verdicts flip.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import yaml

from moebench.cli import compose_run_config
from moebench.errors import UserError, exit_with
from moebench.paths import CONF_DIR

EXPERIMENT = "sensitivity"
SCALES = (0.5, 2.0)
# parameter (as reports name it) -> the profile fields it scales together
PARAMETERS = {
    "link bandwidth": ("h2d_bytes_per_sec",),
    "link latency": ("h2d_latency_sec",),
    "host work per layer": ("host_layer_sec",),
    "read-back sync": ("readback_sec",),
    "kernel efficiency": ("peak_flops", "hbm_bytes_per_sec"),
}
HOST_TERMS = ("readback_sec", "host_layer_sec")


@dataclass(frozen=True)
class Headline:
    """One headline ratio: method `a` over method `b` on `model`, both with `common`
    overrides."""

    name: str
    title: str
    model: str
    common: tuple[str, ...]
    a: str
    b: str
    ratio: str  # a report/paired.py ratio name
    words: str = ""  # its verdict's words (report/paired.py WORDS), if not the ratio's own


SPEQ_WORKLOAD = (  # the paired workload's 16 prompts, one noise tape (MoE-SpeQ runs live)
    "workload.decoding=sample",
    "workload.tapes=1",
)
HEADLINES = {
    "speq_phi": Headline(
        "speq_phi",
        "MoE-SpeQ (the paper's design) over mixtral_offloading (sm), Phi-3.5-MoE proxy, "
        "A100 40 GB PCIe 4.0, 36 GB budget, sampled",
        "proxy_phi35moe",
        ("+experiment=speq_phi", "method.budget_gb=36", *SPEQ_WORKLOAD),
        "speq",
        "mixtral_offloading_sm",
        "speed",
    ),
    "speq_resident_phi": Headline(
        "speq_resident_phi",
        "MoE-SpeQ with the resident draft at k = 8 (speq_beyond's best variant) over "
        "mixtral_offloading (sm), Phi-3.5-MoE proxy, A100 40 GB PCIe 4.0, 40 GB budget, sampled "
        "(8 prompts x 64 tokens: this variant runs ~4x slower than the paper's design here)",
        "proxy_phi35moe",
        (
            "+experiment=speq_beyond",
            "+speq_point=phi35moe_40",
            *SPEQ_WORKLOAD,
            "workload.num_prompts=8",
            "workload.new_tokens=64",
        ),
        "speq_resident_seq_k8",
        "mixtral_offloading_sm",
        "speed",
    ),
    "prism_dsv2": Headline(
        "prism_dsv2",
        "Prism's sub-expert offloading against whole-expert top-K' (original over Prism "
        "tokens/s = Prism's TPOT change), DeepSeek-V2-Lite proxy, RTX 4090 24 GB, floor 4.2 "
        "experts, sampled (the prism_offload workload: 16 prompts x 3 tapes)",
        "proxy_dsv2lite",
        (
            "+experiment=prism_offload",
            "hardware=rtx4090_24g",
            "method.options.slo_experts=4.2",
            "workload.decoding=sample",
        ),
        "topk",
        "prism",
        "speed",
        "prism_latency",
    ),
}


def side_config(headline: Headline, method: str, values: dict[str, float] | None = None):
    """The run config of one side of a headline (at the base profile unless `values`)."""
    return compose_run_config(
        [*headline.common, f"method={method}", *overrides(values or profile_values(headline))]
    )


def host_terms() -> dict[str, float]:
    """The sourced host terms for the GPU profiles (conf/hardware/host_terms.yaml)."""
    data = yaml.safe_load((CONF_DIR / "hardware" / "host_terms.yaml").read_text())
    return {k: float(data[k]) for k in HOST_TERMS}


def profile_values(headline: Headline) -> dict[str, float]:
    """The headline's hardware profile fields at the base point (with the host terms)."""
    hw = compose_run_config([*headline.common, f"method={headline.a}"]).hardware
    values = {f: float(getattr(hw, f)) for fields in PARAMETERS.values() for f in fields}
    return values | host_terms()


def points(headline: Headline) -> list[tuple[str, float, dict[str, float]]]:
    """(parameter, scale, hardware field values) for every point: the committed profile
    (parameter `committed`, no host terms), the base (`base`, scale 1) and each parameter at
    each scale."""
    base = profile_values(headline)
    out = [
        ("committed", 1.0, base | {k: 0.0 for k in HOST_TERMS}),
        ("base", 1.0, base),
    ]
    for parameter, fields in PARAMETERS.items():
        for scale in SCALES:
            out.append((parameter, scale, base | {f: base[f] * scale for f in fields}))
    return out


def overrides(values: dict[str, float]) -> list[str]:
    return [f"++hardware.{k}={v!r}" for k, v in sorted(values.items())]


def run_headline(headline: Headline, results: str, force: bool) -> None:
    from moebench.runner import execute

    for parameter, scale, values in points(headline):
        for method in (headline.b, headline.a):
            cfg = compose_run_config(
                [
                    f"results_dir={results}",
                    *headline.common,
                    f"method={method}",
                    *overrides(values),
                    f"force={str(force).lower()}",
                ]
            )
            cfg = dataclasses.replace(cfg, experiment=EXPERIMENT)  # its records apart
            print(f"{headline.name}: {parameter} x{scale} {cfg.method.name}", flush=True)
            execute(cfg)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m moebench.tools.sensitivity", description=__doc__
    )
    parser.add_argument("--headline", choices=sorted(HEADLINES), action="append")
    parser.add_argument("--results", default="results")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        for name in args.headline or sorted(HEADLINES):
            run_headline(HEADLINES[name], args.results, args.force)
    except UserError as err:
        exit_with(err)


if __name__ == "__main__":
    main()
