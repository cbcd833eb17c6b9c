"""The prism_cloud experiment's runs from the CLI: records, determinism, bad input."""

import json

from moebench.config import load_run_config
from moebench.paths import REPO_ROOT
from moebench.records import identity, run_key
from moebench.schema import RunRecord
from tests.conftest import run_cli

SHORT = [
    "model=proxy_dsv2lite",
    "hardware=h800",
    "method=cloud",
    "workload=poisson_dsv2",
    "workload.arrivals.duration_sec=20",
    "workload.arrivals.rate_per_sec=20",
]


def _record(results_dir):
    (path,) = results_dir.glob("adhoc/*/result.json")
    return json.loads(path.read_text())


def test_serving_run_writes_a_deterministic_record(results_dir):
    out = run_cli(*SHORT, f"results_dir={results_dir}")
    assert out.returncode == 0, out.stderr
    first = _record(results_dir)
    assert first["clock"] == "virtual" and first["validity"]["valid"]
    m = first["metrics"]
    assert 0 < m["goodput_rps"] <= 25 and m["requests"] > 300
    assert m["ttft_sec_p50"] <= m["e2e_sec_p50"] <= m["e2e_sec_p99"]
    assert run_cli(*SHORT, f"results_dir={results_dir}", "force=true").returncode == 0
    assert _record(results_dir)["metrics"] == m


def test_bad_arrival_key_is_one_line(results_dir):
    out = run_cli(*SHORT, "workload.arrivals.rate_per_sec=-1", f"results_dir={results_dir}")
    assert out.returncode == 2
    assert (
        "workload.arrivals.rate_per_sec" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    )
    assert not results_dir.exists()


def test_cloud_method_needs_a_serving_workload(results_dir):
    out = run_cli("model=proxy_dsv2lite", "method=cloud", f"results_dir={results_dir}")
    assert out.returncode == 2 and "workload.prompts" in out.stderr


def test_serving_fields_leave_older_run_keys_alone():
    base = {
        "model": {"name": "m", "family": "mixtral"},
        "hardware": {
            "name": "h",
            "peak_flops": 1.0,
            "hbm_bytes_per_sec": 1.0,
            "h2d_bytes_per_sec": 1.0,
            "h2d_latency_sec": 0.0,
            "launch_sec": 0.0,
            "memory_gb": 1.0,
        },
        "method": {"name": "full_resident"},
        "workload": {"name": "w"},
        "eval": {},
        "logger": {},
    }
    plain = load_run_config(base)

    assert "arrivals" not in identity(plain)["workload"]
    with_arrivals = load_run_config(
        base | {"workload": {"name": "w", "arrivals": {"rate_per_sec": 1}}}
    )
    assert identity(with_arrivals)["workload"]["arrivals"] == {"rate_per_sec": 1}
    assert run_key(with_arrivals) != run_key(plain)


def test_committed_records_keep_their_run_keys():
    """Records written before `workload.arrivals` existed still find themselves (no rerun)."""
    paths = sorted(REPO_ROOT.glob("results/speq_phi/*/result.json"))[:3]
    assert paths
    for path in paths:
        record = json.loads(path.read_text())
        assert run_key(RunRecord.from_dict(record).config) == record["run_key"]


def test_report_puts_each_policy_beside_fifo(results_dir, tmp_path):
    from moebench.report.prism_cloud import prism_cloud
    from moebench.schema import load_records

    for policy, granularity in (("fifo", "original"), ("prism", "prism")):
        out = run_cli(
            *SHORT,
            f"method.options.policy={policy}",
            f"method.options.granularity={granularity}",
            f"results_dir={results_dir}",
        )
        assert out.returncode == 0, out.stderr
    text = "\n".join(prism_cloud(load_records(results_dir), tmp_path))
    assert "| MoE-Prism" in text and "| FIFO (original)" in text and "medium" in text
    assert (tmp_path / "figs" / "prism_cloud_dsv2lite.png").exists()
