"""MoE-SpeQ's cycle transcripts (speq/transcript.py): a run whose governor picks the recorded
k every cycle replays its point's transcript and writes the live record bit for bit; at
another k it decodes live and adds a transcript of its own; the check can fail."""

import numpy as np
import pytest

from moebench.compare_records import compare_folders
from moebench.recordings import recordings_dir
from tests.integration.test_recordings import cache, run  # noqa: F401 (fixture)

SPEQ = ["method=speq", "method.budget_gb=0.01"]  # tiny_mixtral: the draft and a few slots
# every variant after the first shares the first's point; fixed k = 3 needs its own schedule
VARIANTS = {
    "bytes governor": [*SPEQ, "+method.options.governor=bytes"],
    "roofline, another budget": ["method=speq", "method.budget_gb=0.02"],
    "int4_cached": [*SPEQ, "+method.options.draft=int4_cached"],
    "fixed k = 3": [*SPEQ, "method.options.fixed_k=3"],
    "one-by-one verify": [*SPEQ, "+method.options.verify=sequential", "method.options.fixed_k=3"],
}


@pytest.mark.parametrize("decoding", ["greedy", "sample"])
def test_a_replayed_speq_run_writes_its_live_record(tmp_path, cache, decoding):  # noqa: F811
    common = [f"workload.decoding={decoding}", "workload.num_prompts=2"]
    for overrides in VARIANTS.values():
        live = run(tmp_path / "live", *overrides, *common, "replay=false")
        assert live.live_reason == "replay=false"
    assert not recordings_dir().exists()  # replay=false neither reads nor writes transcripts
    for name, overrides in VARIANTS.items():
        first = run(tmp_path / "first", *overrides, *common)
        replayed = run(tmp_path / "replayed", *overrides, *common)
        assert replayed.replayed_from.startswith("transcript "), name
        assert replayed.live_reason is None and replayed.clock == "virtual"
        assert first.output_sha256 == replayed.output_sha256
        if name == "bytes governor":
            assert first.live_reason.startswith("the first run of its point: recorded ")
        if name == "fixed k = 3":  # the point's transcript holds another k schedule
            assert first.live_reason.startswith("a k schedule no transcript holds")
    paired, differences = compare_folders(tmp_path / "live", tmp_path / "replayed")
    assert paired == len(VARIANTS) and differences == []
    # one point (two transcripts: two k schedules) plus the one-by-one verify's point
    names = sorted(p.name for p in recordings_dir().glob("*.npz"))
    assert len(names) >= 3 and len({n.rsplit("-k", 1)[0] for n in names}) == 2


def test_a_corrupted_transcript_changes_the_record(tmp_path, cache):  # noqa: F811
    """The equality check can fail: one verify forward's routing changed in the transcript,
    and the replayed record no longer matches the live one."""
    run(tmp_path / "live", *SPEQ, "replay=false")
    run(tmp_path / "first", *SPEQ)
    path = next(recordings_dir().glob("*.npz"))
    with np.load(path, allow_pickle=False) as d:
        arrays = dict(d)
    shapes = arrays["forward_shape"]  # (tokens, context, draft) per forward
    verify = next(i for i in range(1, len(shapes)) if not shapes[i, 2])  # the first cycle's
    row = int(shapes[:verify, 0].sum())
    ids = arrays["ids"]
    ids[row] = (ids[row] + np.arange(1, ids.shape[-1] + 1)) % 8  # other experts in every layer
    np.savez_compressed(path, **arrays)
    replayed = run(tmp_path / "replayed", *SPEQ)
    assert replayed.replayed_from.startswith("transcript ")
    _, differences = compare_folders(tmp_path / "live", tmp_path / "replayed")
    assert any(".metrics." in d for d in differences)


def test_the_resident_draft_stays_live(tmp_path, cache):  # noqa: F811
    overrides = [*SPEQ, "+method.options.draft=resident", "workload.num_prompts=1"]
    for _ in range(2):
        record = run(tmp_path, *overrides)
        assert record.replayed_from is None and "needs the cache" in record.live_reason
    assert not recordings_dir().exists()


def test_record_trace_writes_the_same_target_routing_live_and_replayed(tmp_path, cache):  # noqa: F811
    """record_trace=true on MoE-SpeQ writes the target's forwards (prefill and verifies, no
    draft forward); a replay of the transcript writes the same routing.npz as a live run."""
    common = [*SPEQ, "workload.num_prompts=2", "record_trace=true"]
    live = run(tmp_path / "live", *common, "replay=false")
    run(tmp_path / "first", *common)
    replayed = run(tmp_path / "replayed", *common)
    assert replayed.replayed_from.startswith("transcript ")
    traces = []
    for which, record in (("live", live), ("replayed", replayed)):
        assert record.raw["routing_trace"] == "routing.npz"
        (path,) = (tmp_path / which).rglob("routing.npz")
        with np.load(path, allow_pickle=False) as d:
            traces.append({k: d[k] for k in d.files})
    assert traces[0].keys() == traces[1].keys()
    for name in traces[0]:
        assert np.array_equal(traces[0][name], traces[1][name]), name
    (transcript,) = recordings_dir().glob("*.npz")
    with np.load(transcript, allow_pickle=False) as d:
        target_forwards = int((d["forward_shape"][:, 2] == 0).sum())
    assert len(traces[0]["step_tokens"]) == target_forwards  # no draft forward in the trace
    assert (traces[0]["step_context"] == 0).sum() == 2  # one prefill per prompt
