"""Bad overrides end in one line on stderr with exit 2: no traceback, no record."""

import pytest

from tests.conftest import run_cli

BAD_OVERRIDES = {
    "speq k_max zero": ["method=speq", "method.options.k_max=0"],
    "speq k_max below k_min": ["method=speq", "method.options.k_min=5", "method.options.k_max=2"],
    "speq fixed_k negative": ["method=speq", "method.options.fixed_k=-1"],
    "speq fixed_k above k_max": ["method=speq", "method.options.fixed_k=9"],
    "speq draft_bits zero": ["method=speq", "method.options.draft_bits=0"],
    "speq unknown draft": ["method=speq", "+method.options.draft=int8"],
    "speq unknown verify": ["method=speq", "+method.options.verify=parallel"],
    "speq draft_slots above the experts": [
        "method=speq",
        "+method.options.draft=int4_cached",
        "+method.options.draft_slots=99",
    ],
    "speq int4_cached on the real backend": [
        "backend=real",
        "method=speq",
        "+method.options.draft=int4_cached",
    ],
    "unknown speq_point": ["+speq_point=phi35moe_99"],
    "top-k above the experts": ["model.arch.num_experts_per_tok=99"],
    "unknown group option": ["hardware=h900"],
    "unknown key": ["workload.prompt_length=8"],
    "wrong type": ["workload.new_tokens=many"],
    "out of range": ["method.budget_gb=-1"],
    "missing file": ["workload.prompts=trace", "workload.trace_path=/nonexistent/routing.npz"],
}


@pytest.mark.parametrize("overrides", BAD_OVERRIDES.values(), ids=BAD_OVERRIDES.keys())
def test_bad_override_is_one_line_exit_2_and_no_record(overrides, results_dir):
    proc = run_cli("+experiment=debug", f"results_dir={results_dir}", *overrides)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("moebench: "), proc.stderr
    assert "Traceback" not in proc.stderr
    key = overrides[-1].split("=")[0].lstrip("+~")
    assert key.split(".")[-1] in lines[0]
    assert not list(results_dir.rglob("*.json"))


def test_results_dir_that_cannot_be_created_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = run_cli("+experiment=debug", f"results_dir={blocker}/results")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "results_dir" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
