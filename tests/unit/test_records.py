import json

import pytest

from moebench.config import load_run_config
from moebench.records import run_key, write_json_atomic
from moebench.schema import SCHEMA_VERSION, RunRecord, load_record, load_records
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


def stored(key="k", **extra):
    """A schema-1 record as older runs wrote it (the committed records are like this)."""
    return {
        "schema_version": 1,
        "run_key": key,
        "experiment": "exp",
        "method": "speq",
        "model": {"name": "proxy_x", "family": "mixtral", "proxy_of": None, "source": "proxy"},
        "hardware": "h",
        "workload": {"name": "w", "version": 1},
        "clock": "virtual",
        "config": {**valid(), "clock": "virtual", "method": {"name": "speq", "budget_gb": 30}},
        "git": {"sha": None, "dirty": None},
        "env": {},
        "metrics": {"k_mean": 3.5, "accept_len_mean": 2.0, "tokens_per_sec": 1.0},
        "validity": {"valid": True, "reasons": []},
        **extra,
    }


def test_load_records_finds_every_result(tmp_path):
    for i in range(3):
        write_json_atomic(tmp_path / "exp" / f"k{i}" / "result.json", stored(f"k{i}"))
    assert [r.run_key for r in load_records(tmp_path)] == ["k0", "k1", "k2"]


def test_a_schema_1_record_loads_migrated(tmp_path):
    write_json_atomic(tmp_path / "result.json", stored())
    record = load_record(tmp_path / "result.json")
    assert record.schema_version == SCHEMA_VERSION
    assert record.metrics == {
        "k_tokens_mean": 3.5,
        "accept_len_tokens_mean": 2.0,
        "tokens_per_sec": 1.0,
    }
    assert record.config.seed == 0 and not hasattr(record.config, "clock")
    assert record.options.k_max == 8  # typed options, defaults from methods/options.py


def test_a_record_round_trips(tmp_path):
    record = RunRecord.from_dict(stored())
    again = RunRecord.from_dict(record.to_dict())
    assert (
        again.to_dict() == record.to_dict() and again.to_dict()["schema_version"] == SCHEMA_VERSION
    )


@pytest.mark.parametrize(
    "data,message",
    [
        (stored(schema_version=99), "schema_version 99 is newer"),
        (stored(colour="red"), "unknown record key 'colour'"),
        ({"run_key": "k"}, "not a moebench record"),
    ],
)
def test_a_bad_record_fails_in_one_line_naming_the_file(tmp_path, data, message):
    from moebench.errors import UserError

    path = tmp_path / "result.json"
    write_json_atomic(path, data)
    with pytest.raises(UserError, match=message) as err:
        load_record(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


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


def test_a_benchmark_record_is_a_run_record_with_its_arguments(tmp_path):
    from moebench.records import write_benchmark_record

    path = write_benchmark_record(
        tmp_path,
        "engine_bench",
        "proxy_x",
        None,
        {"overhead_ratio": 1.1},
        arguments={"model": "proxy_x", "repeats": 3},
    )
    record = load_record(path)
    assert record.schema_version == SCHEMA_VERSION and record.config is None
    assert record.benchmark == {"model": "proxy_x", "repeats": 3} and record.clock == "wall"
