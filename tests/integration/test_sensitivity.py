"""reports/sensitivity.md labels each profile by the one parameter it changes, prints each
headline ratio with its interval, and says when a verdict flips (tools/sensitivity.py)."""

import pytest

from moebench.report import sensitivity as report
from moebench.report.paired import ratio
from moebench.tools import sensitivity as tool
from tests.integration.test_recordings import run

SAMPLED = ["workload.decoding=sample", "workload.num_prompts=8", "method.budget_gb=0.006"]
A100_BW = 25.0e9


def test_every_point_changes_one_parameter_at_half_and_double():
    points = tool.points(tool.HEADLINES["prism_dsv2"])
    assert len(points) == 2 + 2 * len(tool.PARAMETERS)
    base = dict(next(v for p, _, v in points if p == "base"))
    assert all(base[k] > 0 for k in tool.HOST_TERMS)  # the sourced terms are the base
    for parameter, scale, values in points:
        label = report._label(values, base)
        assert label == (parameter, scale)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sensitivity")
    base = {"h2d_bytes_per_sec": A100_BW, "readback_sec": 1e-5, "host_layer_sec": 3e-5}
    profiles = {
        ("base", 1.0): base,
        ("committed", 1.0): base | {"readback_sec": 0.0, "host_layer_sec": 0.0},
        ("link bandwidth", 0.5): base | {"h2d_bytes_per_sec": A100_BW / 2},
        ("link bandwidth", 2.0): base | {"h2d_bytes_per_sec": A100_BW * 2},
        ("host work per layer", 2.0): base | {"host_layer_sec": 6e-5},
    }
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOEBENCH_CACHE", str(folder / "cache"))
        for label, values in profiles.items():
            extra = [f"++hardware.{k}={v!r}" for k, v in values.items()]
            out[label] = tuple(
                run(folder / "results", f"method={m}", *SAMPLED, *extra)
                for m in ("ondemand", "mixtral_offloading_sm")
            )
    return out


def test_profiles_are_labelled_from_the_records_alone(records):
    flat = [r for pair in records.values() for r in pair]
    a, b = records[("base", 1.0)]
    pairs = report.labelled_pairs(flat, {"a": a.config, "b": b.config})
    assert set(pairs) == set(records)
    for label, (a, b) in pairs.items():
        assert (a, b) == records[label]


def test_the_report_gives_each_ratio_its_interval_and_names_what_moves_it(
    records, tmp_path, monkeypatch
):
    flat = [r for pair in records.values() for r in pair]
    tiny = tool.Headline(
        "tiny",
        "tiny headline",
        flat[0].model.name,
        (),
        "ondemand",
        "mixtral_offloading_sm",
        "speed",
    )
    monkeypatch.setattr(report, "HEADLINES", {"tiny": tiny})
    a, b = records[("base", 1.0)]
    sides = {"ondemand": a.config, "mixtral_offloading_sm": b.config}
    monkeypatch.setattr(report, "side_config", lambda headline, method: sides[method])
    text = "\n".join(report.sensitivity(flat, tmp_path))
    half = ratio(*records[("link bandwidth", 0.5)])
    assert half.text() in text and "**Moves it most:**" in text
    assert ("**Verdict flips** at" in text) or ("**No verdict flips**" in text)
    assert (tmp_path / "figs" / "sensitivity_tiny.png").exists()
    # a slower link costs ondemand (every expert copied) more than the cache
    assert half.ratio < ratio(*records[("base", 1.0)]).ratio
