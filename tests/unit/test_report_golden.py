"""The summary table renders records the same way every time, invalid runs flagged."""

from moebench.records import write_json_atomic
from moebench.report.summary import write_summary
from tests.golden import check_golden


def record(key, valid, tpot, reasons=()):
    return {
        "experiment": "exp",
        "run_key": key,
        "method": "full_resident",
        "model": {"name": "proxy_x", "proxy_of": "real_x"},
        "hardware": "a100_40g_pcie4",
        "clock": "virtual",
        "validity": {"valid": valid, "reasons": list(reasons)},
        "metrics": {"tpot_sec_p50": tpot, "tokens_per_sec": 1 / tpot, "h2d_bytes": 2.5e9},
        "output_sha256": "ab" * 32,
        "git": {"sha": None, "dirty": None},
        "env": {},
    }


def test_golden_summary_table(tmp_path):
    write_json_atomic(tmp_path / "res" / "exp" / "b" / "result.json", record("b", True, 0.02))
    write_json_atomic(
        tmp_path / "res" / "exp" / "a" / "result.json",
        record("a", False, 0.05, ["prompts [1] produced fewer than 16 tokens"]),
    )
    path = write_summary(tmp_path / "res", tmp_path / "out")
    text = path.read_text().replace(str(tmp_path / "res"), "RESULTS")
    check_golden("summary.md", text)
    assert text.index("| exp") < text.index("NO: prompts")  # invalid row flagged, not dropped
    assert write_summary(tmp_path / "res", tmp_path / "out").read_text() == path.read_text()
