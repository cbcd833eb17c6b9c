"""Reports give every ratio between methods its paired 95% interval and a verdict, from the
records' per-sequence samples; records that did not decode the same sequences do not pair."""

import pytest

from moebench.report.engine import engine_baselines
from moebench.report.paired import ratio
from moebench.report.speq import speq_report
from tests.integration.test_recordings import run

SAMPLED = ["workload.decoding=sample", "workload.num_prompts=4", "workload.tapes=2"]
BUDGET = "method.budget_gb=0.006"  # tiny_mixtral: room for SpeQ's draft and a few slots


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    import os

    folder = tmp_path_factory.mktemp("paired")
    os.environ["MOEBENCH_CACHE"] = str(folder / "cache")
    try:
        return {
            name: run(folder / "results", f"method={name}", BUDGET, *SAMPLED)
            for name in ("mixtral_offloading_sm", "ondemand", "speq")
        }
    finally:
        del os.environ["MOEBENCH_CACHE"]


def test_a_ratio_has_an_interval_that_pairs_the_same_sequences(records):
    lru, ondemand = records["mixtral_offloading_sm"], records["ondemand"]
    r = ratio(ondemand, lru)
    assert r.n == 8 and r.lo <= r.ratio <= r.hi
    assert r.ratio == pytest.approx(
        ondemand.metrics["tokens_per_sec"] / lru.metrics["tokens_per_sec"]
    )
    same = ratio(lru, lru)
    assert (same.lo, same.ratio, same.hi) == (1.0, 1.0, 1.0)


def test_records_of_other_sequences_do_not_pair(records, tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path / "cache"))
    other_seed = run(tmp_path, "method=ondemand", BUDGET, *SAMPLED, "seed=1")
    assert ratio(other_seed, records["mixtral_offloading_sm"]) is None


def test_engine_and_speq_reports_print_intervals_and_verdicts(records, tmp_path):
    lru, ondemand, speq = (records[k] for k in ("mixtral_offloading_sm", "ondemand", "speq"))
    lines = engine_baselines([lru, ondemand], tmp_path)
    table = lines[lines.index(next(x for x in lines if "against the LRU cache" in x)) :]
    row = next(x for x in table if "| ondemand" in x)
    expected = ratio(ondemand, lru)
    assert expected.text() in row and expected.verdict("faster", "slower") in row
    assert (tmp_path / "figs" / "engine_baselines_tps.png").exists()
    text = "\n".join(speq_report([lru, ondemand, speq], tmp_path, "speq_tiny"))
    over_lru = ratio(speq, lru)
    assert over_lru.text() in text and "**Speedups of MoE-SpeQ** over 8 sequences" in text
