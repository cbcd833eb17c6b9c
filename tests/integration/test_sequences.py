"""Runs are made of (prompt, tape) sequences: a sampled run decodes every prompt once per noise
tape, tape 0 is the one-tape run, and the per-sequence samples add up to the run's metrics."""

import numpy as np
import pytest

from moebench.methods.options import TARGET_ROUTING
from moebench.recordings import find_recording, recording_key
from tests.integration.test_recordings import BUDGET, config, run


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path / "cache"))


def test_tapes_multiply_sampled_sequences_and_tape_zero_is_the_one_tape_run(tmp_path):
    one = run(tmp_path / "one", "method=ondemand", BUDGET, "workload.decoding=sample")
    three = run(
        tmp_path / "three",
        "method=ondemand",
        BUDGET,
        "workload.decoding=sample",
        "workload.tapes=3",
    )
    prompts = one.config.workload.num_prompts
    seq = three.raw["per_sequence"]
    assert seq["tape"] == [t for t in range(3) for _ in range(prompts)]
    assert seq["prompt"] == list(range(prompts)) * 3
    assert three.raw["step_sec"][:prompts] == one.raw["step_sec"]  # same engine state so far
    assert one.run_key != three.run_key
    greedy = run(tmp_path / "g", "method=ondemand", BUDGET, "workload.tapes=3")
    assert greedy.raw["per_sequence"]["tape"] == [0] * prompts  # greedy has no tape


def test_other_tapes_sample_other_tokens(tmp_path):
    """The recording keeps every sequence's tokens: tape 1 differs from tape 0 on every prompt."""
    cfg = config(tmp_path, "method=full_resident", "workload.decoding=sample", "workload.tapes=2")
    run(tmp_path, "method=full_resident", "workload.decoding=sample", "workload.tapes=2")
    outputs = find_recording(recording_key(cfg, TARGET_ROUTING)).outputs
    prompts = cfg.workload.num_prompts
    assert all(outputs[i] != outputs[i + prompts] for i in range(prompts))


@pytest.mark.parametrize("method", [["method=mixtral_offloading", BUDGET], ["method=speq"]])
def test_per_sequence_samples_add_up_to_the_run(tmp_path, method):
    r = run(tmp_path, *method, "workload.decoding=sample", "workload.tapes=2")
    seq, m = r.raw["per_sequence"], r.metrics
    assert sum(seq["decode_tokens"]) == m["decode_steps"]
    assert np.isclose(sum(seq["decode_sec"]), m["tpot_sec_mean"] * m["decode_steps"])
    assert np.isclose(sum(seq["h2d_bytes"]), m["h2d_bytes"])
    assert seq["ttft_sec"] == [steps[0] for steps in r.raw["step_sec"]]
    if r.method == "speq":
        assert sum(seq["draft_accepted"]) / sum(seq["draft_proposed"]) == pytest.approx(
            m["draft_accept_frac"]
        )
    else:
        assert "draft_accepted" not in seq
