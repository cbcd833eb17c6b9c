"""`make regress` fails, with a table of what moved, when a key ratio leaves its tolerance."""

import json

from moebench import regress


def golden_from(measured):
    return {k: {"value": v} | regress.tolerance(k) for k, v in measured.items()}


MEASURED = {
    "proxy_ci/ondemand/tpot_over_full_resident": 1.50,
    "proxy_ci/mixtral_offloading/expert_hit_frac": 0.47,
}


def test_within_tolerance_passes():
    golden = golden_from(MEASURED)
    golden["proxy_ci/ondemand/tpot_over_full_resident"] = {
        "value": 1.52,
        "rel": 0.05,
    }  # 1.3% off, 5% allowed
    assert all(r["ok"] for r in regress.compare(MEASURED, golden))


def test_committed_keys_are_exact_so_the_last_bit_counts():
    golden = golden_from(MEASURED)
    nudged = dict(MEASURED) | {"proxy_ci/mixtral_offloading/expert_hit_frac": 0.47 + 1e-12}
    assert all(r["ok"] for r in regress.compare(MEASURED, golden))
    assert [r["allowed"] for r in regress.compare(nudged, golden) if not r["ok"]] == ["exact"]


def test_perturbed_golden_fails_with_a_table(tmp_path, monkeypatch, capsys):
    golden = golden_from(MEASURED)
    golden["proxy_ci/mixtral_offloading/expert_hit_frac"]["value"] = 0.60  # 0.13 off, exact allowed
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(golden))
    monkeypatch.setattr(regress, "measure", lambda quick=False: dict(MEASURED))
    assert regress.main(["--golden", str(path)]) == 1
    out = capsys.readouterr()
    assert "proxy_ci/mixtral_offloading/expert_hit_frac" in out.out
    assert "0.6000" in out.out and "0.4700" in out.out and "-0.1300" in out.out and "NO" in out.out
    assert "1 of 2 key ratios moved" in out.err


def test_missing_key_fails():
    rows = regress.compare(MEASURED, {})
    assert not any(r["ok"] for r in rows)


def test_committed_golden_covers_every_method_ratio():
    golden = json.loads(regress.GOLDEN.read_text())
    for method in regress.PROXY_METHODS[1:]:
        assert f"proxy_ci/{method}/tpot_over_full_resident" in golden


def test_keys_whose_data_is_absent_are_skipped_not_failed():
    golden = golden_from(MEASURED) | {
        "mixtral_trace/lru@60GB/expert_hit_frac": {"value": 0.7, "abs": 0.03}
    }
    rows = regress.compare(MEASURED, golden, unavailable=("mixtral_trace/",))
    assert all(r["ok"] for r in rows)
    assert [r["allowed"] for r in rows if r["key"].startswith("mixtral_trace/")] == ["skipped"]


PINNED = {"pinned": True, "aten_capability": "DEFAULT", "mkl_branch": "COMPATIBLE"}
WEIGHTS = {
    "weights_sha256": "a" * 64,
    "torch": "2.13.0+cpu",
    "kernels": PINNED,
    "cpu": {"model": "Xeon A", "isa": "avx2 avx512f amx_tile", "machine": "x86_64"},
}


def test_same_weights_say_nothing():
    assert regress.weights_note(WEIGHTS, dict(WEIGHTS)) is None


def test_other_weights_are_one_line_naming_both_hashes_the_kernels_and_the_cpu():
    other = WEIGHTS | {
        "weights_sha256": "b" * 64,
        "kernels": {"pinned": False, "aten_capability": "AVX2", "mkl_branch": "OFF"},
        "cpu": WEIGHTS["cpu"] | {"model": "EPYC B", "isa": "avx2 fma"},
    }
    note = regress.weights_note(other, WEIGHTS)
    assert note.count("\n") == 0
    assert "b" * 12 in note and "a" * 12 in note
    assert (
        "not pinned (ATen AVX2" in note
        and "Xeon A" in note
        and "EPYC B" in note
        and "make golden" in note
    )


def test_pinned_weights_that_differ_blame_training_not_the_cpu():
    other = WEIGHTS | {"weights_sha256": "b" * 64, "cpu": WEIGHTS["cpu"] | {"model": "EPYC B"}}
    assert "same torch build and pinned kernels" in regress.weights_note(other, WEIGHTS)


def test_regress_prints_the_weights_note_then_compares(tmp_path, monkeypatch, capsys):
    path = tmp_path / "regress.json"
    path.write_text(json.dumps(golden_from(MEASURED)))
    (tmp_path / regress.GOLDEN_WEIGHTS.name).write_text(json.dumps(WEIGHTS))
    other = WEIGHTS | {"weights_sha256": "c" * 64}
    monkeypatch.setattr(
        regress, "measure", lambda quick=False: dict(MEASURED) | {regress.WEIGHTS_KEY: other}
    )
    assert regress.main(["--golden", str(path)]) == 0  # other bits, same ratios
    out = capsys.readouterr().out
    assert "c" * 12 in out and "a" * 12 in out and "within tolerance" in out


def test_committed_regress_weights_name_their_hash_torch_and_cpu():
    weights = json.loads(regress.GOLDEN_WEIGHTS.read_text())
    assert (
        len(weights["weights_sha256"]) == 64 and weights["torch"] and weights["kernels"]["pinned"]
    )


SPREAD = {
    "seeds": [0, 1, 2],
    "keys": {
        "proxy_ci/ondemand/tpot_over_full_resident": {"values": [1.5, 1.55, 1.46], "spread": 0.05},
        "proxy_ci/mixtral_offloading/expert_hit_frac": {"values": [0.47] * 3, "spread": 0.0},
    },
}


def test_other_weights_may_move_by_the_training_spread_and_no_further():
    golden = regress.with_training_spread(golden_from(MEASURED), SPREAD)
    within = dict(MEASURED) | {"proxy_ci/ondemand/tpot_over_full_resident": 1.54}
    rows = regress.compare(within, golden)
    assert all(r["ok"] for r in rows)
    assert {r["allowed"] for r in rows} == {"±0.05 (training)", "exact (training)"}
    beyond = dict(MEASURED) | {"proxy_ci/ondemand/tpot_over_full_resident": 1.56}
    assert not all(r["ok"] for r in regress.compare(beyond, golden))


def test_regress_uses_the_spread_only_for_other_weights(tmp_path, monkeypatch, capsys):
    path = tmp_path / "regress.json"
    path.write_text(json.dumps(golden_from(MEASURED)))
    (tmp_path / regress.GOLDEN_WEIGHTS.name).write_text(json.dumps(WEIGHTS))
    (tmp_path / regress.GOLDEN_SPREAD.name).write_text(json.dumps(SPREAD))
    moved = dict(MEASURED) | {"proxy_ci/ondemand/tpot_over_full_resident": 1.54}
    for sha, code in (("a" * 64, 1), ("b" * 64, 0)):  # same weights: exact; others: spread
        weights = WEIGHTS | {"weights_sha256": sha}
        monkeypatch.setattr(
            regress, "measure", lambda quick=False, w=weights: moved | {regress.WEIGHTS_KEY: w}
        )
        assert regress.main(["--golden", str(path)]) == code
    assert "may move by its training spread" in capsys.readouterr().out


def test_committed_spread_covers_every_proxy_key_over_several_training_seeds():
    spread = json.loads(regress.GOLDEN_SPREAD.read_text())
    golden = json.loads(regress.GOLDEN.read_text())
    assert len(spread["seeds"]) >= 4
    for key in golden:
        if key.startswith("proxy_ci/"):
            assert len(spread["keys"][key]["values"]) == len(spread["seeds"])
