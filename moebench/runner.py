"""Run one configured experiment point: model -> method -> workload -> record.

The entry point (`__main__`) validates the config; this module does the work and owns the
record lifecycle: skip if done, failure marker on a crash, atomic write on success.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from moebench.bench.metrics import bound_metrics, latency_metrics, output_sha256
from moebench.bench.sampling import chooser_for
from moebench.bench.sequences import SequenceLog, sequence_plan
from moebench.bench.workloads import make_prompts
from moebench.config import RunConfig
from moebench.determinism import fixed_threads, warn_if_unpinned
from moebench.engine.costs import CostModel
from moebench.engine.trace import RoutingTrace
from moebench.engine.trace_formats import load_trace
from moebench.errors import ConfigError, UserError
from moebench.methods.options import SPEQ_TRANSCRIPT
from moebench.methods.protocol import DecodeMethod, ServingMethod
from moebench.methods.registry import (
    build_method,
    check_method,
    live_reason,
    method_entry,
)
from moebench.models.build import build_model, hf_config_without_weights
from moebench.models.loaded import LoadedModel
from moebench.models.shape import ModelShape, shape_from_hf_config
from moebench.paths import REPO_ROOT
from moebench.recordings import (
    Recording,
    find_recording,
    find_transcripts,
    recording_key,
    save_recording,
    save_transcript,
    transcript_path,
)
from moebench.records import (
    FAILURE_FILE,
    make_record,
    record_file,
    run_dir,
    run_key,
    write_failure,
    write_json_atomic,
    write_record,
)
from moebench.schema import RunRecord
from moebench.sinks import mirror
from moebench.speq.transcript import Transcript, TranscriptMismatch


def charged_shape(cfg: RunConfig, loaded: LoadedModel | None) -> ModelShape:
    """Sizes the clock charges: the real model a proxy stands for, else the model itself
    (for a trace replay, the catalog model the trace was recorded on). Without the loaded
    model (replaying the run's recording), the model's config gives its shape."""
    from moebench.models.catalog import REAL_MODELS, real_model_shape

    if cfg.model.proxy_of is not None:
        return real_model_shape(cfg.model.proxy_of)
    if loaded is not None:
        return shape_from_hf_config(loaded.hf_config)
    if cfg.kind == "decode":  # a replay of the run's recording: the model's config
        return shape_from_hf_config(hf_config_without_weights(cfg.model))
    if cfg.model.name not in REAL_MODELS:
        raise ConfigError(
            "model", cfg.model.name, "a real model or proxy from the catalog to replay a trace"
        )
    return real_model_shape(cfg.model.name)


def resolve_data_path(path: str) -> Path:
    """A data path as given, else relative to the repository root; absolute either way."""
    candidate = Path(path).expanduser()
    if not candidate.exists():
        candidate = REPO_ROOT / path
    if not candidate.exists():
        raise UserError(
            f"data file {path} not found (looked in the working directory and the repo root)"
        )
    return candidate.resolve()


def model_identity(loaded: LoadedModel | None) -> dict[str, Any]:
    """What identifies the weights a record ran: the tensors' hash (random models, proxies)
    and, for a real checkpoint, its files' identity and hub revision."""
    if loaded is None:
        return {"weights_sha256": None}
    out: dict[str, Any] = {"weights_sha256": loaded.weights_sha256}
    if loaded.checkpoint is not None:
        out["checkpoint"] = loaded.checkpoint
    return out


def judge(
    cfg: RunConfig, outputs: list[list[int]] | None, metrics: dict[str, Any]
) -> dict[str, Any]:
    """A run is valid when every prompt got all its tokens and every metric is finite."""
    reasons = []
    short = [i for i, out in enumerate(outputs or []) if len(out) != cfg.workload.new_tokens]
    if short:
        reasons.append(f"prompts {short} produced fewer than {cfg.workload.new_tokens} tokens")
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        reasons.append(f"non-finite metrics: {bad}")
    return {"valid": not reasons, "reasons": reasons}


def eval_validity(tasks: list[str], results: dict, metrics: dict[str, float]) -> dict[str, Any]:
    """An accuracy run is valid when every task reported and every metric is finite."""
    reasons = [f"task {t} missing" for t in tasks if t not in results]
    bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
    if bad:
        reasons.append(f"non-finite metrics: {bad}")
    return {"valid": not reasons, "reasons": reasons}


def execute(cfg: RunConfig) -> Path | None:
    """Run `cfg` unless its record exists; return the record path (None when skipped)."""
    out_dir = run_dir(cfg)
    result_path = out_dir / record_file(cfg)
    if result_path.exists() and not cfg.force:
        print(f"moebench: skip {result_path} (exists; force=true reruns)")
        return None
    check_method(cfg)  # before any work: a bad option must not cost a model build
    _check_writable(cfg, out_dir)
    (out_dir / FAILURE_FILE).unlink(missing_ok=True)
    warn_if_unpinned()
    try:
        with fixed_threads(cfg.threads):
            record = RUNS[cfg.kind](cfg, out_dir)
    except UserError:
        raise
    except BaseException as err:
        marker = write_failure(out_dir, err)
        print(f"moebench: run failed; see {marker}")
        raise
    write_record(result_path, record)
    print(f"moebench: wrote {result_path}")
    mirror(cfg.logger, record.to_dict(), out_dir)
    return result_path


def _check_writable(cfg: RunConfig, out_dir: Path) -> None:
    """Before any work, a results folder that cannot be made must not cost a run. A folder
    made only for this check is removed again, so a killed run leaves no empty record
    folder: every writer (records.atomic_file) makes the folder when it writes."""
    existed = out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            "results_dir",
            cfg.results_dir,
            f"a folder that can be created ({err.strerror}: {out_dir})",
        ) from None
    if not existed:
        out_dir.rmdir()


def _run_eval(cfg: RunConfig, out_dir: Path) -> RunRecord:
    """Accuracy through lm-eval, with the method's engine installed (eval.json)."""
    from moebench.eval.adapter import evaluate

    wall_start = time.perf_counter()
    loaded = build_model(cfg.model)
    method: DecodeMethod = build_method(
        cfg, loaded, CostModel(cfg.hardware, charged_shape(cfg, loaded))
    )
    out = evaluate(
        loaded, cfg.eval.tasks, cfg.eval.num_fewshot, cfg.eval.limit, method, seed=cfg.seed
    )
    metrics = {
        f"{task}.{key.split(',')[0]}": value
        for task, res in out["results"].items()
        for key, value in res.items()
        if isinstance(value, float) and "stderr" not in key
    }
    return make_record(
        cfg,
        "none",
        metrics,
        eval_validity(cfg.eval.tasks, out["results"], metrics),
        time.perf_counter() - wall_start,
        model_identity(loaded),
        method_details=method.details(),
        eval=out,
    )


def _run_serving(cfg: RunConfig, out_dir: Path) -> RunRecord:
    """A serving simulation: arrivals, a scheduler and the cost table; no model runs (the
    registry guarantees a method that serves)."""
    wall_start = time.perf_counter()
    method: ServingMethod = build_method(
        cfg, None, CostModel(cfg.hardware, charged_shape(cfg, None))
    )
    metrics = method.serve()
    return make_record(
        cfg,
        method.clock_label,
        metrics,
        judge(cfg, None, metrics),
        time.perf_counter() - wall_start,
        method_details=method.details(),
    )


@dataclasses.dataclass
class Decoded:
    """What a decode run, a replay of its recording or a trace replay produced."""

    method: DecodeMethod
    model: dict[str, Any]  # the record's model identity
    outputs: list[list[int]] | None  # None for a trace replay (no tokens)
    step_sec: list[list[float]]
    output_sha256: str
    replayed_from: str | None = None
    trace: RoutingTrace | None = None  # the run's routing, for record_trace
    live_reason: str | None = None  # why the model ran (a live decode)
    per_sequence: dict[str, Any] | None = None  # bench/sequences.SequenceLog's samples


def _decode_live(
    cfg: RunConfig, key: str | None, why: str, loaded: LoadedModel | None = None
) -> Decoded:
    """The model (`loaded`, else built here) generates (`why`); with a recording `key`, the
    run also saves the point's routing recording for the runs after it."""
    if loaded is None:
        loaded = build_model(cfg.model)
    costs = CostModel(cfg.hardware, charged_shape(cfg, loaded))
    method: DecodeMethod = build_method(cfg, loaded, costs, recording=key is not None)
    outputs, step_sec, step_prompt = [], [], []
    prompts = make_prompts(cfg.workload, loaded, cfg.seed)
    plan = sequence_plan(cfg.workload)
    log = SequenceLog(method, plan)
    what = " (recording)" if key is not None else ""
    for j, (i, tape) in enumerate(
        tqdm(
            plan,
            unit="sequence",
            desc=f"{cfg.method.name} {cfg.model.name}{what}",
            disable=len(plan) < 2,
        )
    ):
        tokens, steps = method.generate(
            prompts[i], cfg.workload.new_tokens, chooser_for(cfg.workload, cfg.seed, i, tape)
        )
        outputs.append(tokens)
        step_sec.append(steps)
        log.close(steps)
        step_prompt += [j] * (len(method.steps) - len(step_prompt))
    trace = None
    if method.record_routing:
        layers = [v.index for v in loaded.layers]
        trace = RoutingTrace.from_steps(method.steps, layers, run_key(cfg), step_prompt)
    identity = model_identity(loaded)
    recorder = getattr(method, "transcript", None)  # MoE-SpeQ's cycle transcript
    if cfg.record_trace and recorder is not None:
        trace = recorder.target_trace(run_key(cfg))
    if key is not None and recorder is not None:
        saved = save_transcript(recorder.transcript(key, identity, run_key(cfg)))
        print(f"moebench: recorded {saved} for the runs of this point that follow")
    elif key is not None:
        saved = save_recording(Recording(key, trace, outputs, identity, run_key(cfg)))
        print(f"moebench: recorded {saved} for the runs of this point that follow")
    return Decoded(
        method, identity, outputs, step_sec, output_sha256(outputs), None, trace, why, log.as_raw()
    )


def _replay_recording(cfg: RunConfig, recording: Recording) -> Decoded:
    """The method's engine driven by the point's routing recording: no model runs (unless
    the method's details need it), the record is the one a live run would write."""
    needs_model = method_entry(cfg.method.name).replay_needs_model
    loaded = build_model(cfg.model) if needs_model else None
    method: DecodeMethod = build_method(
        cfg, loaded, CostModel(cfg.hardware, charged_shape(cfg, loaded))
    )
    print(f"moebench: replaying {recording.path} (recorded by {recording.source})")
    step_sec, per_sequence = _replayed(cfg, method, recording.prompts(), method.replay_prompt)
    trace = dataclasses.replace(recording.trace, source=run_key(cfg))  # as a live run keeps it
    return Decoded(
        method,
        recording.model,
        recording.outputs,
        step_sec,
        output_sha256(recording.outputs),
        f"recording {recording.key}",
        trace,
        per_sequence=per_sequence,
    )


def _replayed(cfg: RunConfig, method, sequences, replay_one) -> tuple[list[list[float]], dict]:
    """Every recorded sequence through `replay_one` (its step seconds), under the progress
    bar and with the per-sequence samples a live run has."""
    log = SequenceLog(method, sequence_plan(cfg.workload))
    step_sec = []
    for seq in tqdm(
        sequences,
        unit="sequence",
        desc=f"{cfg.method.name} {cfg.model.name} (replay)",
        disable=cfg.workload.num_sequences < 2,
    ):
        step_sec.append(replay_one(seq))
        log.close(step_sec[-1])
    return step_sec, log.as_raw()


def _replay_transcript(cfg: RunConfig, transcript: Transcript, loaded: LoadedModel) -> Decoded:
    """MoE-SpeQ's engine driven by a cycle transcript of its point (speq/transcript.py). The
    model is still needed (the draft's fidelity is measured on it); raises TranscriptMismatch
    as soon as this run's governor picks another k than the transcript holds."""
    method = build_method(cfg, loaded, CostModel(cfg.hardware, charged_shape(cfg, loaded)))
    step_sec, per_sequence = _replayed(
        cfg,
        method,
        transcript.sequences,
        lambda seq: method.replay_transcript(seq, transcript.layers, cfg.workload.new_tokens)[1],
    )
    print(f"moebench: replayed {transcript_path(transcript)} (recorded by {transcript.source})")
    outputs = [s.tokens for s in transcript.sequences]
    return Decoded(
        method,
        transcript.model,
        outputs,
        step_sec,
        output_sha256(outputs),
        f"transcript {transcript_path(transcript).stem}",
        transcript.target_trace(run_key(cfg)) if cfg.record_trace else None,
        per_sequence=per_sequence,
    )


def _speq_point(cfg: RunConfig, key: str) -> Decoded:
    """A MoE-SpeQ run replays the transcript of its point whose k schedule its governor
    follows, else decodes live and adds its own transcript."""
    transcripts = find_transcripts(key)
    # Built once: a refused replay leaves the model as it was (the draft swaps its experts
    # in and back, speq/draft.py), so the live run after it decodes on the same model.
    loaded = build_model(cfg.model)
    for transcript in transcripts:
        try:
            return _replay_transcript(cfg, transcript, loaded)
        except TranscriptMismatch as err:
            print(f"moebench: {transcript_path(transcript).name} does not apply ({err})")
    why = "the first run of its point" if not transcripts else "a k schedule no transcript holds"
    return _decode_live(cfg, key, f"{why}: recorded {key}", loaded)


def _replay_trace(cfg: RunConfig) -> Decoded:
    """A routing trace from a file (workload.prompts=trace) drives the engine; no tokens."""
    method: DecodeMethod = build_method(
        cfg, None, CostModel(cfg.hardware, charged_shape(cfg, None))
    )
    trace = load_trace(resolve_data_path(cfg.workload.trace_path))
    digest = hashlib.sha256(trace.ids.tobytes()).hexdigest()
    log = SequenceLog(method, [(0, 0)])  # the whole trace is one sequence
    step_sec = method.replay(trace)
    log.close(step_sec)
    return Decoded(
        method,
        model_identity(None),
        None,
        [step_sec],
        digest,
        str(cfg.workload.trace_path),
        per_sequence=log.as_raw(),
    )


def decoded_for(cfg: RunConfig) -> Decoded:
    """A trace replay, else the point's routing recording replayed when there is one, else
    a live decode (which records the point when the method can replay)."""
    if cfg.kind == "replay":
        return _replay_trace(cfg)
    why = live_reason(cfg)
    if why is not None:
        return _decode_live(cfg, None, why)
    identity = check_method(cfg).routing_identity()
    key = recording_key(cfg, identity)
    if key is None:
        return _decode_live(cfg, None, "the checkpoint's files are not found locally")
    if identity.get("routing") == SPEQ_TRANSCRIPT:
        return _speq_point(cfg, key)
    recording = find_recording(key)
    if recording is not None:
        return _replay_recording(cfg, recording)
    return _decode_live(cfg, key, f"the first run of its point: recorded {key}")


def _run(cfg: RunConfig, out_dir: Path) -> RunRecord:
    """A decode run, a replay of its routing recording, or a trace replay."""
    wall_start = time.perf_counter()
    run = decoded_for(cfg)
    method = run.method
    metrics = latency_metrics(run.step_sec) | method.metrics()
    metrics |= bound_metrics(metrics, cfg.hardware.h2d_bytes_per_sec)
    raw: dict[str, Any] = {"step_sec": run.step_sec}
    if run.per_sequence is not None:
        raw["per_sequence"] = run.per_sequence
    if cfg.timeline:
        write_json_atomic(out_dir / "timeline.json", method.timeline())
        raw["timeline"] = "timeline.json"
    if cfg.record_trace and run.trace is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        run.trace.routing_only().save(out_dir / "routing.npz")
        raw["routing_trace"] = "routing.npz"
    return make_record(
        cfg,
        method.clock_label,
        metrics,
        judge(cfg, run.outputs, metrics),
        time.perf_counter() - wall_start,
        run.model,
        method_details=method.details(),
        raw=raw,
        output_sha256=run.output_sha256,
        replayed_from=run.replayed_from,
        live_reason=run.live_reason,
    )


# How each kind of run (RunConfig.kind) is driven.
RUNS = {"accuracy": _run_eval, "serving": _run_serving, "decode": _run, "replay": _run}
