"""Reports come from records only and regenerate byte for byte."""

import shutil

from moebench.report.__main__ import write_reports
from tests.conftest import REPO, run_cli


def test_report_regenerates_byte_identical_from_committed_records(tmp_path):
    results = REPO / "results"
    first, second = tmp_path / "a", tmp_path / "b"
    paths = write_reports(results, first)
    write_reports(results, second)
    assert len(paths) >= 2
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert any(str(f).endswith(".png") for f in files)
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_each_experiment_gets_its_own_report(tmp_path, results_dir):
    assert (
        run_cli(
            "-m",
            "+experiment=debug",
            "method=full_resident,ondemand",
            "method.budget_gb=0.0012",
            f"results_dir={results_dir}",
        ).returncode
        == 0
    )
    write_reports(results_dir, tmp_path / "out")
    text = (tmp_path / "out" / "debug.md").read_text()
    assert "**Conditions.**" in text and "ondemand" in text and "full_resident" in text
    shutil.rmtree(results_dir)
