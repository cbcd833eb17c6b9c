"""Accuracy through lm-eval: offline tasks load, and lossless methods score identically."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from moebench.config import ModelConfig, load_run_config
from moebench.engine.costs import CostModel
from moebench.eval.adapter import evaluate
from moebench.methods.registry import build_method
from moebench.models.shape import shape_from_hf_config
from moebench.models.train import load_proxy
from moebench.report import perplexity
from moebench.report.claims import prism_ppl_claims
from moebench.report.prism import _changes_figure, _gate_changes, _table2
from moebench.report.proxy_spread import perplexity_comparisons, spread_rows
from tests.conftest import SHARED_DATA, run_cli
from tests.tiny import hardware
from tests.unit.test_config import valid


def offload_method(loaded):
    data = valid()
    shape = shape_from_hf_config(loaded.hf_config)
    fixed = shape.non_expert_params() * 2 + shape.kv_elems_per_token * 2 * shape.num_layers * 32
    data["method"] = {
        "name": "mixtral_offloading",
        "budget_gb": (fixed + 3 * 4 * shape.expert_bytes + 1) / 1e9,
    }
    data["workload"] = {"name": "w", "prompt_len": 16, "new_tokens": 16}
    run = load_run_config(data)
    return build_method(run, loaded, CostModel(hardware(), shape))


def test_offloaded_proxy_has_exactly_the_plain_perplexity(ci_cache):
    loaded = load_proxy(ModelConfig(name="proxy_ci", family="mixtral", source="proxy"))
    plain = evaluate(loaded, ["heldout_ppl"], 0, 1)["results"]["heldout_ppl"]
    method = offload_method(loaded)
    offloaded = evaluate(loaded, ["heldout_ppl"], 0, 1, method=method)["results"]["heldout_ppl"]
    assert offloaded["word_perplexity,none"] == plain["word_perplexity,none"]
    assert method.engine.stats.h2d_bytes > 0  # the engine really ran (and missed) during eval
    assert method.plan["slots_per_layer"] == 3


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
def test_eval_experiment_writes_eval_json_for_every_offline_task(ci_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(ci_cache[0]))
    proc = run_cli("+experiment=eval_offline", "eval.limit=3", f"results_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    [path] = tmp_path.rglob("eval.json")
    record = json.loads(path.read_text())
    assert record["validity"]["valid"] and record["clock"] == "none"
    expected = {
        "wikitext",
        "lambada_openai",
        "piqa",
        "hellaswag",
        "arc_easy",
        "arc_challenge",
        "winogrande",
        "boolq",
        "heldout_ppl",
    }
    assert set(record["eval"]["results"]) == expected
    assert record["eval"]["n-samples"]["wikitext"]["original"] == 62  # WikiText-2 test articles
    assert record["eval"]["n-samples"]["piqa"]["original"] == 1838


def test_unknown_task_is_one_line(ci_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(ci_cache[0]))
    proc = run_cli("+experiment=eval_offline", "eval.tasks=[mmlu]", f"results_dir={tmp_path}")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "mmlu" in proc.stderr


HELDOUT = ["heldout_word_order", "heldout_function_word"]


def test_heldout_tasks_score_every_document_identically_when_offloaded(ci_cache):
    loaded = load_proxy(ModelConfig(name="proxy_ci", family="mixtral", source="proxy"))
    plain = evaluate(loaded, HELDOUT, 0, 24)
    offloaded = evaluate(loaded, HELDOUT, 0, 24, method=offload_method(loaded))
    for task in HELDOUT:
        assert len(plain["per_doc"][task]["acc"]) == 24
        assert plain["results"][task]["acc_stderr,none"] > 0  # lm-eval's standard error kept
    assert offloaded["per_doc"] == plain["per_doc"]


def test_accuracy_reports_pair_documents_and_order_by_perplexity(ci_cache, tmp_path, monkeypatch):
    from moebench.report.accuracy import difference
    from moebench.report.prism_accuracy import prism_points_accuracy
    from moebench.schema import load_records

    monkeypatch.setenv("MOEBENCH_CACHE", str(ci_cache[0]))
    proc = run_cli(
        "-m",
        "+experiment=prism_points_accuracy_original",
        "model=proxy_ci",
        "method.options.top_k=1,2",
        "eval.limit=16",
        f"results_dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr
    top1, top2 = sorted(load_records(tmp_path), key=lambda r: r.options.top_k)
    diff = difference(top1, top2, "heldout_word_order")
    assert diff.n == 16 and diff.lo <= diff.diff <= diff.hi
    assert difference(top2, top2, "heldout_word_order").text() == "+0.0 [+0.0, +0.0]"
    lines = "\n".join(prism_points_accuracy([top1, top2], tmp_path))
    assert "Spearman rho" in lines and "Δ word order vs all" in lines
    assert (tmp_path / "figs" / "prism_points_accuracy.png").exists()


def _topk_method(loaded, top_k):
    data = valid()
    data["method"] = {"name": "topk", "budget_gb": None, "options": {"top_k": top_k}}
    run = load_run_config(data)
    return build_method(run, loaded, CostModel(hardware(), shape_from_hf_config(loaded.hf_config)))


def test_windowed_perplexity_pairs_records_over_documents(ci_cache, tmp_path):
    """Per-window log-likelihoods add up to lm-eval's own word perplexity; a lossless method
    pairs at exactly 1, and top-1 routing is found worse with an interval above 1."""
    loaded = load_proxy(ModelConfig(name="proxy_ci", family="mixtral", source="proxy"))
    task = "heldout_ppl_windows"

    def record(method=None):
        return SimpleNamespace(eval=evaluate(loaded, [task], 0, 12, method=method))

    plain, offloaded, top1 = (
        record(),
        record(offload_method(loaded)),
        record(_topk_method(loaded, 1)),
    )
    ll, words = np.array(plain.eval["per_doc"][task]["word_perplexity"]).T
    assert len(ll) == 12 and words.min() >= 900
    aggregate = plain.eval["results"][task]["word_perplexity,none"]
    assert math.isclose(math.exp(-ll.sum() / words.sum()), aggregate, rel_tol=1e-9)
    same = perplexity.ratio(offloaded, plain)
    assert (same.lo, same.ratio, same.hi) == (1.0, 1.0, 1.0)
    worse = perplexity.ratio(top1, plain)
    assert worse.ratio == pytest.approx(
        top1.eval["results"][task]["word_perplexity,none"] / aggregate, rel=1e-9
    )
    assert worse.lo > 1 and worse.verdict() == "higher" and worse.n == 12
    assert "higher" in perplexity.change_text(worse, worse.ratio)
    whole = SimpleNamespace(eval=evaluate(loaded, ["heldout_ppl"], 0, 2))
    # Table 2 pairs each gate with the original at the same K and draws the intervals
    runs = {"orig": plain, "cg": top1, "lg": offloaded}

    def ppl(run):
        return run.eval["results"][task]["word_perplexity,none"]

    frame = pd.DataFrame(
        [
            {"model": "olmoe", "K": 12, "variant": v, "word ppl": ppl(runs[key]), "run_key": key}
            for v, key in (("original", "orig"), ("CG", "cg"), ("LG w/o FT", "lg"))
        ]
    )
    changes = {c["gate"]: c for c in _gate_changes(frame, runs)}
    assert set(changes) == {"CG", "LG w/o FT"}  # no LG w/ FT record: no row, no crash
    assert changes["CG"]["paired"] == worse and changes["LG w/o FT"]["paired"] == same
    table = _table2(list(changes.values())).iloc[0]
    assert table["ours CG"].endswith("higher") and table["ours LG w/o FT"].startswith("+0.00%")
    _changes_figure(list(changes.values()), tmp_path)
    assert (tmp_path / "figs" / "prism_ppl_change.png").exists()

    # ... and summary.md's claim rows: the CG row pairs over the windows, a whole-works
    # original gives the bare ratio
    def as_record(run, method, label=None, **options):
        details = {"prism": {"n": 4, "active_k": options.get("active_k"), "gate": label}}
        return SimpleNamespace(
            eval=run.eval,
            model=SimpleNamespace(proxy_of="olmoe"),
            method=method,
            options=SimpleNamespace(**options),
            method_details=details if method == "prism" else {},
            hardware="a100_40g_pcie4",
            run_key=f"{method}-{label}-{id(run)}",
        )

    gates = [
        as_record(top1, "prism", "CG", gate="cg", active_k=12),
        as_record(offloaded, "prism", "LG w/o FT", gate="lg", active_k=12),
    ]
    claims = prism_ppl_claims([as_record(plain, "topk", top_k=3), *gates])
    assert [c["verdict"] for c in claims] == ["higher", "not distinguishable at 95%"]
    assert claims[0]["ours [95%]"] == worse.text() and claims[0]["sequences"] == "12 documents"
    unpaired = prism_ppl_claims([as_record(whole, "topk", top_k=3), *gates])
    assert unpaired[0]["ours [95%]"].endswith("[no interval]") and unpaired[0]["verdict"] == "-"
    # the training spread of Table 2: each "seed" pairs its own records; here seed 1's CG is
    # lossless, so the row spreads by seed 0's whole change and is decided on neither
    original = as_record(plain, "topk", top_k=3)
    lossless_cg = as_record(offloaded, "prism", "CG", gate="cg", active_k=12)
    comparisons = perplexity_comparisons({0: [original, gates[0]], 1: [original, lossless_cg]})
    assert list(comparisons) == [("olmoe K = 12", "CG over the original (K' = 3)")]
    [row] = spread_rows(comparisons, "perplexity", 4, "document")
    assert row["train seed 0 [95%]"] == worse.text(4) and row["train seed 1 [95%]"] == same.text(4)
    assert row["training spread (max - min)"] == pytest.approx(worse.ratio - 1)
    assert "document interval width (median)" in row
    assert row["over seeds"] == "not decided on every proxy"
    # whole works (4 documents) pair, but give no interval; other documents do not pair
    assert perplexity.ratio(whole, plain) is None
    assert math.isnan(perplexity.ratio(whole, whole).lo)
