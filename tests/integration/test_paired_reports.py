"""Reports give every ratio between methods its paired 95% interval and a verdict, from the
records' per-sequence samples; records that did not decode the same sequences do not pair."""

import dataclasses

import pytest

from moebench.report.claims import by_training_seed, training_spread
from moebench.report.engine import engine_baselines
from moebench.report.paired import ratio, verdict
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


@pytest.fixture(scope="module")
def other_proxy(tmp_path_factory):
    """Stand-ins for a proxy trained with another seed: the same tiny model decoding other
    prompts (run seed 1), so each comparison gets another ratio."""
    folder = tmp_path_factory.mktemp("other_proxy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOEBENCH_CACHE", str(folder / "cache"))
        return {
            name: run(folder / "results", f"method={name}", BUDGET, *SAMPLED, "seed=1")
            for name in ("mixtral_offloading_sm", "speq")
        }


def as_training_seed(record, seed):
    """The record as if its proxy had been trained with `seed` and it had run seed 0 (the
    renderers group by the training seed and match runs by everything else)."""
    model = dataclasses.replace(record.config.model, source="proxy", train_seed=seed)
    config = dataclasses.replace(record.config, model=model, seed=0)
    return dataclasses.replace(record, config=config)


def test_proxy_spread_sets_the_training_spread_beside_each_seeds_interval(
    records, other_proxy, tmp_path
):
    """Two "proxies": each gets its own ratio and interval, the spread is their distance."""
    seeded = [as_training_seed(records[k], 0) for k in ("mixtral_offloading_sm", "speq")]
    seeded += [as_training_seed(r, 1) for r in other_proxy.values()]
    lines = proxy_spread(seeded, tmp_path)
    row = next(x for x in lines if "over sm" in x and x.startswith("|"))
    by_seed = [ratio(records["speq"], records["mixtral_offloading_sm"])]
    by_seed.append(ratio(other_proxy["speq"], other_proxy["mixtral_offloading_sm"]))
    assert all(r.text() in row for r in by_seed)
    spread = abs(by_seed[0].ratio - by_seed[1].ratio)
    assert f"{spread:.3f}" in row
    assert (tmp_path / "figs" / "proxy_spread.png").exists()
    # seed 0 not run by the spread experiment: its twin from another experiment stands in,
    # and the report says so; a seed-0 run of another config does not
    twins = [dataclasses.replace(r, experiment="speq_beyond") for r in seeded[:2]]
    other_config = [
        dataclasses.replace(
            r,
            config=dataclasses.replace(
                r.config, method=dataclasses.replace(r.config.method, budget_gb=1.0)
            ),
        )
        for r in twins
    ]
    configless = dataclasses.replace(twins[0], config=None)  # a tool record (engine_bench)
    filled = proxy_spread(seeded[2:], tmp_path, others=[configless, *other_config, *twins])
    assert next(x for x in filled if "over sm" in x and x.startswith("|")) == row
    assert any("committed proxy's record of the same config in speq_beyond (2" in x for x in filled)
    alone = proxy_spread(seeded[2:], tmp_path, others=other_config)
    assert by_seed[0].text() not in next(x for x in alone if "over sm" in x and x.startswith("|"))


def as_greedy(record):
    """The record as if it had decoded greedily (the report keys rows by decoding)."""
    workload = dataclasses.replace(record.config.workload, decoding="greedy")
    return dataclasses.replace(record, config=dataclasses.replace(record.config, workload=workload))


def test_proxy_spread_keeps_greedy_and_sampled_runs_in_rows_of_their_own(
    records, other_proxy, tmp_path
):
    """A greedy run pairs only with the greedy baseline of its seed: its own row, after the
    sampled ones, and a greedy variant without a greedy baseline gives no row."""

    def rows(recs):
        text = "\n".join(proxy_spread(recs, tmp_path))
        lines = [x for x in text.splitlines() if x.startswith("|") and "over sm" in x]
        return [[cell.strip() for cell in x.split("|")] for x in lines]  # cells, not widths

    sampled = [as_training_seed(records[k], 0) for k in ("mixtral_offloading_sm", "speq")]
    sampled += [as_training_seed(r, 1) for r in other_proxy.values()]
    greedy = [as_greedy(as_training_seed(other_proxy[k], s)) for k in other_proxy for s in (0, 1)]
    both = rows(sampled + greedy)
    assert (
        len(both) == 2 and not both[0][1].endswith(", greedy") and both[1][1].endswith(", greedy")
    )
    same = ratio(other_proxy["speq"], other_proxy["mixtral_offloading_sm"]).text()
    assert both[1][3:5] == [same, same]  # both "seeds" of the greedy row are that pair
    assert both[0] == rows(sampled)[0]
    speq_only = [g for g in greedy if g.method == "speq"]
    assert rows(sampled + speq_only) == rows(sampled)


def test_a_claim_gives_its_range_over_training_seeds(records, other_proxy):
    """The summary's claim row finds the same comparison on the retrained proxies by config
    alone, and says on how many of them its verdict holds."""
    names = ("speq", "mixtral_offloading_sm")
    claim = [as_training_seed(records[k], 0) for k in names]
    retrained = [as_training_seed(other_proxy[k], 1) for k in names]
    spread = by_training_seed(claim + retrained)
    ratios = [ratio(*claim), ratio(*retrained)]
    own = verdict(ratios[0])
    text = training_spread(*claim, spread, own)
    low, high = sorted(r.ratio for r in ratios)
    assert ratios[0].ratio != ratios[1].ratio  # the check below could fail
    assert text.startswith(f"{low:.3f}-{high:.3f} over seeds 0, 1; ")
    same = sum(verdict(r) == verdict(ratios[0]) for r in ratios)
    assert text.endswith(f"{verdict(ratios[0])} on {same} of 2")
    # the claim's own records stand for seed 0 where the spread lacks it
    assert training_spread(*claim, by_training_seed(retrained), own) == text
    # one seed only, or another config: no range
    assert training_spread(*claim, by_training_seed(claim), own) == "-"
    other_budget = [
        dataclasses.replace(
            r,
            config=dataclasses.replace(
                r.config, method=dataclasses.replace(r.config.method, budget_gb=1.0)
            ),
        )
        for r in retrained
    ]
    assert training_spread(*claim, by_training_seed(claim + other_budget), own) == "-"
