"""Reports give every ratio between methods its paired 95% interval and a verdict, from the
records' per-sequence samples; records that did not decode the same sequences do not pair."""

import dataclasses

import pytest

from moebench.report.engine import engine_baselines
from moebench.report.paired import ratio
from moebench.report.proxy_spread import proxy_spread
from moebench.report.speq import speq_report
from tests.integration.test_recordings import run

SAMPLED = ["workload.decoding=sample", "workload.num_prompts=4", "workload.tapes=2"]
BUDGET = "method.budget_gb=0.006"  # tiny_mixtral: room for SpeQ's draft and a few slots


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paired")
    with pytest.MonkeyPatch.context() as mp:  # restores whatever cache was set before
        mp.setenv("MOEBENCH_CACHE", str(folder / "cache"))
        return {
            name: run(folder / "results", f"method={name}", BUDGET, *SAMPLED)
            for name in ("mixtral_offloading_sm", "ondemand", "speq")
        }


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


def as_training_seed(record, seed):
    """The record as if its proxy had been trained with `seed` (the renderer groups by it)."""
    model = dataclasses.replace(record.config.model, source="proxy", train_seed=seed)
    return dataclasses.replace(record, config=dataclasses.replace(record.config, model=model))


def test_proxy_spread_sets_the_training_spread_beside_each_seeds_interval(
    records, tmp_path, monkeypatch
):
    """Two "proxies" (here: the same tiny model on other prompts, run seed 1 standing for
    training seed 1): each gets its own ratio and interval, the spread is their distance."""
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path / "cache"))
    other = {
        name: run(tmp_path / "results", f"method={name}", BUDGET, *SAMPLED, "seed=1")
        for name in ("mixtral_offloading_sm", "speq")
    }
    seeded = [as_training_seed(records[k], 0) for k in ("mixtral_offloading_sm", "speq")]
    seeded += [as_training_seed(r, 1) for r in other.values()]
    lines = proxy_spread(seeded, tmp_path)
    row = next(x for x in lines if "over sm" in x and x.startswith("|"))
    by_seed = [ratio(records["speq"], records["mixtral_offloading_sm"])]
    by_seed.append(ratio(other["speq"], other["mixtral_offloading_sm"]))
    assert all(r.text() in row for r in by_seed)
    spread = abs(by_seed[0].ratio - by_seed[1].ratio)
    assert f"{spread:.3f}" in row
    assert (tmp_path / "figs" / "proxy_spread.png").exists()
