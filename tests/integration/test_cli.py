"""The foundation's acceptance, as a user runs it: records, skip, force, sweeps, bad input."""

import json
import shutil

from tests.conftest import run_cli


def records(results_dir):
    return sorted(results_dir.rglob("result.json"))


def test_debug_writes_one_valid_record_then_skips_then_force_is_identical(results_dir):
    first = run_cli("+experiment=debug", f"results_dir={results_dir}")
    assert first.returncode == 0, first.stderr
    [path] = records(results_dir)
    record = json.loads(path.read_text())
    assert record["validity"]["valid"] and record["clock"] == "virtual"
    assert record["schema_version"] == 2 and record["config"]["seed"] == 0
    assert set(record["git"]) == {"sha", "dirty"} and record["env"]["versions"]["torch"]

    again = run_cli("+experiment=debug", f"results_dir={results_dir}")
    assert again.returncode == 0 and "skip" in again.stdout
    assert json.loads(path.read_text())["started_at"] == record["started_at"]

    forced = run_cli("+experiment=debug", f"results_dir={results_dir}", "force=true")
    assert forced.returncode == 0, forced.stderr
    rerun = json.loads(path.read_text())
    assert rerun["metrics"] == record["metrics"]
    assert rerun["output_sha256"] == record["output_sha256"]


def test_unknown_method_is_one_line_naming_the_key_and_choices(results_dir):
    proc = run_cli("+experiment=debug", "method=nonexistent", f"results_dir={results_dir}")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "method" in lines[0] and "full_resident" in lines[0]
    assert not records(results_dir)


def test_impossible_value_in_a_sweep_is_caught_before_any_run(results_dir):
    proc = run_cli(
        "-m", "+experiment=debug", "workload.new_tokens=4,0", f"results_dir={results_dir}"
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "moebench: config error: workload.new_tokens=0 is not allowed; expected an integer > 0"
    ]
    assert not records(results_dir)


def test_sweep_writes_one_record_per_seed_and_resumes(results_dir):
    sweep = ("-m", "+experiment=debug", "seed=1,2,3", f"results_dir={results_dir}")
    assert run_cli(*sweep).returncode == 0
    paths = records(results_dir)
    assert len(paths) == 3
    shutil.rmtree(paths[1].parent)  # as if the sweep had been killed before this run
    rerun = run_cli(*sweep)
    assert rerun.returncode == 0
    assert rerun.stdout.count("skip") == 2 and rerun.stdout.count("wrote") == 1
    assert len(records(results_dir)) == 3


def test_report_lists_every_record(results_dir, tmp_path):
    assert (
        run_cli("-m", "+experiment=debug", "seed=7,8", f"results_dir={results_dir}").returncode == 0
    )
    out = tmp_path / "reports"
    proc = run_cli("--results", str(results_dir), "--out", str(out), module="moebench.report")
    assert proc.returncode == 0, proc.stderr
    table = (out / "summary.md").read_text()
    for path in records(results_dir):
        assert path.parent.name in table
