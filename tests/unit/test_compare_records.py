"""`python -m moebench.compare_records` finds any computed difference between two folders."""

import copy
import json

from moebench import compare_records

RECORD = {
    "experiment": "e",
    "run_key": "k1",
    "clock": "virtual",
    "output_sha256": "abc",
    "schema_version": 2,
    "method": "m",
    "hardware": "h",
    "git": {"sha": None, "dirty": None},
    "validity": {"valid": True, "reasons": []},
    "model": {"name": "x", "weights_sha256": "w"},
    "metrics": {"tokens_per_sec": 4.63, "expert_hit_frac": 0.48},
    "raw": {"step_sec": [0.1, 0.2]},
    "method_details": {"memory_plan": {"slots_per_layer": 6}},
    "env": {"cpu": {"model": "Xeon"}},
    "started_at": "t0",
    "wall_sec": 12.0,
}


def write(folder, *records):
    for r in records:
        path = folder / r["experiment"] / r["run_key"] / "result.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(r))
    return folder


def test_records_that_differ_only_in_where_and_when_they_ran_are_the_same(tmp_path, capsys):
    other = copy.deepcopy(RECORD) | {
        "env": {"cpu": {"model": "EPYC"}},
        "started_at": "t1",
        "wall_sec": 30.0,
    }
    a, b = write(tmp_path / "a", RECORD), write(tmp_path / "b", other)
    assert compare_records.main([str(a), str(b)]) == 0
    assert "1 records paired, 0 differences" in capsys.readouterr().out


def test_a_last_bit_in_a_per_step_sample_is_a_difference(tmp_path, capsys):
    other = copy.deepcopy(RECORD)
    other["raw"]["step_sec"][1] = 0.2 + 2**-54 * 8
    a, b = write(tmp_path / "a", RECORD), write(tmp_path / "b", other)
    assert compare_records.main([str(a), str(b)]) == 1
    assert "e/k1 .raw.step_sec[1]" in capsys.readouterr().out


def test_real_clock_records_compare_tokens_not_times(tmp_path):
    wall = copy.deepcopy(RECORD) | {"clock": "wall"}
    slower = copy.deepcopy(wall) | {"metrics": {"tokens_per_sec": 3.0}}
    assert (
        compare_records.compare_folders(write(tmp_path / "a", wall), write(tmp_path / "b", slower))[
            1
        ]
        == []
    )
    other_tokens = copy.deepcopy(wall) | {"output_sha256": "def"}
    _, lines = compare_records.compare_folders(tmp_path / "a", write(tmp_path / "c", other_tokens))
    assert lines == ["e/k1 .output_sha256: 'abc' != 'def'"]


def test_a_record_missing_on_one_side_is_named(tmp_path):
    extra = copy.deepcopy(RECORD) | {"run_key": "k2"}
    paired, lines = compare_records.compare_folders(
        write(tmp_path / "a", RECORD, extra), write(tmp_path / "b", RECORD)
    )
    assert paired == 1 and lines == [f"only in {tmp_path / 'a'}: e/k2"]
