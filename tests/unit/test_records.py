import json

import pytest

from moebench.config import load_run_config
from moebench.records import load_records, run_key, write_json_atomic
from tests.unit.test_config import valid


def test_run_key_ignores_where_and_how_results_are_kept():
    a = load_run_config(valid())
    b = load_run_config(valid() | {"results_dir": "/elsewhere", "force": True, "timeline": True})
    assert run_key(a) == run_key(b)


def test_run_key_changes_with_anything_that_decides_the_result():
    base = run_key(load_run_config(valid()))
    assert run_key(load_run_config(valid() | {"seed": 1})) != base
    assert run_key(load_run_config(valid() | {"workload": {"name": "w", "new_tokens": 8}})) != base


def test_atomic_write_leaves_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "r" / "result.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]  # no temp file left


def test_load_records_finds_every_result(tmp_path):
    for i in range(3):
        write_json_atomic(tmp_path / "exp" / f"k{i}" / "result.json", {"i": i})
    assert [r["i"] for r in load_records(tmp_path)] == [0, 1, 2]


def test_an_eval_with_a_nan_metric_is_invalid():
    from moebench.runner import eval_validity

    assert eval_validity(["a"], {"a": {}}, {"a.ppl": 3.0})["valid"]
    bad = eval_validity(["a", "b"], {"a": {}}, {"a.ppl": float("nan")})
    assert not bad["valid"] and "task b missing" in bad["reasons"] and "a.ppl" in bad["reasons"][1]


def test_decoding_keys_keep_greedy_run_keys_and_split_sampled_ones():
    from moebench.config import load_run_config
    from moebench.records import run_key
    from tests.unit.test_config import valid

    def key(**workload):
        data = valid()
        data["workload"] = {"name": "w", **workload}
        return run_key(load_run_config(data))

    greedy = key()
    assert key(decoding="greedy") == greedy
    assert key(decoding="greedy", temperature=0.7) == greedy  # temperature is moot under greedy
    assert key(decoding="sample") != greedy
    assert key(decoding="sample", temperature=0.7) != key(decoding="sample")
