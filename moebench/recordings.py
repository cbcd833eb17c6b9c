"""Record once, replay many: one routing recording per (model, weights, workload, decoding,
seed, routing-changing options), shared by every method that replays it.

A lossless offloading method emits the plain model's tokens and, under the target, routes
exactly as the model does, whatever is resident. So the first live run of a point writes a
recording (every forward's routing, each layer's next-layer guess, which prompt each forward
belongs to, the emitted tokens and the weights' identity), and every later run of that point
(another method, budget, cache policy or hardware profile) drives its engine from it instead
of running the model: the same engine calls in the same order, so the same record, bit for
bit. Recordings live in the model cache ($MOEBENCH_CACHE/recordings/, or $MOEBENCH_RECORDINGS
when set), named by a hash of everything that decides them, and are written atomically, so a
killed sweep loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moebench.bench.workloads import prompt_source_identity
from moebench.config import RunConfig, to_dict, unset_late_fields
from moebench.engine.trace import RoutingTrace
from moebench.models.build import weights_fingerprint
from moebench.models.corpora import cache_dir
from moebench.paths import atomic_file
from moebench.speq.transcript import Forward, SequenceTranscript, Transcript

FORMAT = 1  # bump when what a recording holds, or how it is keyed, changes
TRANSCRIPT_FORMAT = 1  # the same for MoE-SpeQ's cycle transcripts


@dataclass
class Recording:
    """One point's routing and tokens, as its first live run saw them."""

    key: str
    trace: RoutingTrace  # with step_prompt, and guess_ids for the target's routing
    outputs: list[list[int]]  # emitted tokens per prompt
    model: dict[str, Any]  # the record's model identity (weights hash, checkpoint)
    source: str  # run key of the live run that recorded it

    @property
    def path(self) -> Path:
        return recording_path(self.key)

    def prompts(self) -> list[RoutingTrace]:
        """The trace cut into one trace per decoded sequence (prompt and tape), in order."""
        trace, out = self.trace, []
        bounds = np.cumsum([0, *trace.step_tokens.tolist()])
        for p in range(len(self.outputs)):
            steps = np.flatnonzero(trace.step_prompt == p)
            rows = slice(int(bounds[steps[0]]), int(bounds[steps[-1] + 1]))
            out.append(
                RoutingTrace(
                    trace.layers,
                    trace.step_tokens[steps],
                    trace.step_context[steps],
                    trace.ids[rows],
                    trace.source,
                    None if trace.guess_ids is None else trace.guess_ids[rows],
                    trace.step_prompt[steps],
                )
            )
        return out


def recordings_dir() -> Path:
    """$MOEBENCH_RECORDINGS, else the model cache's recordings/ (the test suite gives every
    test its own, so no test replays what another one recorded)."""
    env = os.environ.get("MOEBENCH_RECORDINGS")
    return Path(env) if env else cache_dir() / "recordings"


def recording_path(key: str) -> Path:
    return recordings_dir() / f"{key}.npz"


def recording_key(cfg: RunConfig, routing: dict[str, Any]) -> str | None:
    """The recording a run replays: its model, weights, workload (prompts, lengths, decoding)
    and the texts its prompts come from, seed, the options that change routing (`routing`),
    and the library versions that compute it. None when the weights cannot be identified
    without loading them."""
    import torch
    import transformers

    weights = weights_fingerprint(cfg.model)
    if weights is None:
        return None
    payload = {
        "format": FORMAT,
        # less fields added later that still hold their default (model.train_seed = 0):
        # adding such a field must not orphan every recording in the cache
        "model": unset_late_fields(cfg.model, to_dict(cfg.model)),
        "weights": weights,
        "workload": to_dict(cfg.workload),
        "prompt_source": prompt_source_identity(cfg.workload),
        "seed": cfg.seed,
        "routing": routing,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"{cfg.model.name}-{digest[:20]}"


def find_recording(key: str) -> Recording | None:
    """The recording saved under `key`, or None (a damaged one is reported and re-recorded)."""
    path = recording_path(key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            meta = json.loads(str(d["meta"]))
            if meta.get("format") != FORMAT:
                return None
            trace = RoutingTrace.from_arrays(d)
            outputs = [row.tolist() for row in d["outputs"]]
    except (OSError, ValueError, KeyError) as err:
        print(f"moebench: recording {path} is unreadable ({err}); recording again", file=sys.stderr)
        return None
    return Recording(key, trace, outputs, meta["model"], meta["source"])


def save_recording(recording: Recording) -> Path:
    """Write atomically (a temporary file in the same folder, then a rename)."""
    path = recording.path
    meta = {"format": FORMAT, "model": recording.model, "source": recording.source}
    with atomic_file(path, "wb") as fh:
        np.savez_compressed(
            fh,
            **recording.trace.arrays(),
            outputs=np.array(recording.outputs, dtype=np.int64),
            meta=np.array(json.dumps(meta, sort_keys=True)),
        )
    return path


# --- MoE-SpeQ's cycle transcripts (speq/transcript.py): one per point and k schedule --------
def transcript_path(transcript: Transcript) -> Path:
    return recordings_dir() / f"{transcript.key}-k{transcript.schedule()}.npz"


def save_transcript(transcript: Transcript) -> Path:
    """Write atomically (a temporary file in the same folder, then a rename)."""
    forwards = [(i, f) for i, s in enumerate(transcript.sequences) for f in s.forwards]
    cycles = [(i, c) for i, s in enumerate(transcript.sequences) for c in s.cycles]
    meta = {
        "format": TRANSCRIPT_FORMAT,
        "key": transcript.key,
        "layers": transcript.layers,
        "model": transcript.model,
        "source": transcript.source,
    }
    path = transcript_path(transcript)
    with atomic_file(path, "wb") as fh:
        np.savez_compressed(
            fh,
            forward_sequence=np.array([i for i, _ in forwards], dtype=np.int32),
            forward_shape=np.array(
                [(f.tokens, f.context, f.draft) for _, f in forwards], dtype=np.int64
            ).reshape(-1, 3),
            ids=np.concatenate([f.ids for _, f in forwards]).astype(np.int16),
            cycle_sequence=np.array([i for i, _ in cycles], dtype=np.int32),
            cycles=np.array([c for _, c in cycles], dtype=np.int64).reshape(-1, 2),
            outputs=np.array([s.tokens for s in transcript.sequences], dtype=np.int64),
            meta=np.array(json.dumps(meta, sort_keys=True)),
        )
    return path


def load_transcript(path: Path) -> Transcript | None:
    """The transcript at `path`, or None when unreadable or of another format."""
    try:
        with np.load(path, allow_pickle=False) as d:
            meta = json.loads(str(d["meta"]))
            if meta.get("format") != TRANSCRIPT_FORMAT:
                return None
            arrays = {k: d[k] for k in d.files if k != "meta"}
    except (OSError, ValueError, KeyError) as err:
        print(f"moebench: transcript {path} is unreadable ({err}); skipped", file=sys.stderr)
        return None
    sequences = [SequenceTranscript(tokens=row.tolist()) for row in arrays["outputs"]]
    row = 0
    for i, (tokens, context, draft) in zip(
        arrays["forward_sequence"], arrays["forward_shape"], strict=True
    ):
        ids = arrays["ids"][row : row + tokens].astype(np.int64)
        sequences[i].forwards.append(Forward(int(tokens), int(context), bool(draft), ids))
        row += tokens
    for i, (k, accepted) in zip(arrays["cycle_sequence"], arrays["cycles"], strict=True):
        sequences[i].cycles.append((int(k), int(accepted)))
    return Transcript(meta["key"], meta["layers"], sequences, meta["model"], meta["source"])


def find_transcripts(key: str) -> list[Transcript]:
    """Every readable transcript of the point `key` (one per k schedule)."""
    paths = sorted(recordings_dir().glob(f"{key}-k*.npz"))
    return [t for t in map(load_transcript, paths) if t is not None]
