"""Routing-trace files: every format reads into the same trace, and a malformed file ends
in one line that names it and what is wrong."""

import json

import numpy as np
import pytest

from moebench.engine.trace_formats import load_trace
from moebench.errors import UserError
from moebench.tools import trace as trace_tool

# 2 sequences of 3 and 2 tokens, 2 layers, top-2 of 4 experts
IDS = np.array(
    [
        [[0, 1], [2, 3]],
        [[1, 2], [3, 0]],
        [[0, 3], [1, 2]],
        [[2, 3], [0, 1]],
        [[1, 3], [0, 2]],
    ]
)
PROMPT = np.array([0, 0, 0, 1, 1])


def policylang(path, header=None, lines=None):
    header = header or {"model_name": "m", "num_layers": 2, "num_experts": 4, "top_k": 2}
    if lines is None:
        lines = [
            {"t": t, "l": layer, "e": IDS[t, layer].tolist(), "s": [0.6, 0.4]}
            for t in range(3)
            for layer in range(2)
        ]
    path.write_text("\n".join(json.dumps(x) for x in [header, *lines]) + "\n")
    return path


def test_plain_npz_reads_as_one_token_forwards_per_sequence(tmp_path):
    np.savez(tmp_path / "t.npz", experts=IDS, prompt=PROMPT, num_experts=4)
    trace = load_trace(tmp_path / "t.npz")
    assert np.array_equal(trace.ids, IDS)
    assert trace.step_tokens.tolist() == [1] * 5
    assert trace.step_context.tolist() == [0, 1, 2, 0, 1]
    assert trace.prompt_of_step().tolist() == PROMPT.tolist()


def test_policylang_jsonl_reads_and_converts_to_a_moebench_trace(tmp_path, capsys):
    path = policylang(tmp_path / "p.jsonl")
    trace = load_trace(path)
    assert np.array_equal(trace.ids, IDS[:3]) and trace.layers == [0, 1]
    trace_tool.main(["convert", str(path), str(tmp_path / "p.npz")])
    again = load_trace(tmp_path / "p.npz")
    assert np.array_equal(again.ids, trace.ids)
    assert np.array_equal(again.step_context, trace.step_context)
    trace_tool.main(["describe", str(tmp_path / "p.npz"), "--slots", "2,3"])
    out = capsys.readouterr().out
    assert "tokens: 3" in out and "lru_hits@3" in out and "belady_hits@2" in out


def test_a_token_missing_a_layer_is_dropped(tmp_path):
    lines = [{"t": t, "l": 0, "e": IDS[t, 0].tolist()} for t in range(3)]
    lines += [{"t": t, "l": 1, "e": IDS[t, 1].tolist()} for t in range(2)]
    trace = load_trace(policylang(tmp_path / "p.jsonl", lines=lines))
    assert len(trace.ids) == 2


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: p.write_text(""), "is empty"),
        (lambda p: p.write_text('{"a": 1}\n'), "neither a vLLM routing line"),
        (lambda p: p.write_text('{"problem_id": 0,\n'), "line 1 is not JSON"),
        (lambda p: policylang(p, header={"model_name": "m"}), "line 1 has no 'num_layers'"),
        (lambda p: policylang(p, lines=[{"t": 0, "l": 5, "e": [0, 1]}]), "layer 5 outside 0..1"),
        (lambda p: policylang(p, lines=[{"t": 0, "e": [0, 1]}]), "line 2 has no 'l'"),
        (
            lambda p: policylang(
                p, lines=[{"t": 0, "l": 0, "e": [0, 9]}, {"t": 0, "l": 1, "e": [0, 1]}]
            ),
            "expert ids must be in 0..3",
        ),
    ],
)
def test_a_malformed_jsonl_names_the_file_and_the_fault(tmp_path, write, message):
    path = tmp_path / "bad.jsonl"
    write(path)
    with pytest.raises(UserError, match=message) as err:
        load_trace(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros(3)}, "needs `experts`"),
        ({"experts": np.zeros((5, 2))}, r"\[tokens, layers, k\]"),
        ({"experts": IDS.astype(float)}, "must be integers"),
        ({"experts": IDS, "prompt": PROMPT[::-1]}, "non-decreasing"),
        ({"experts": IDS - 1}, "expert ids must be in >= 0"),
    ],
)
def test_a_malformed_npz_names_the_file_and_the_fault(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserError, match=message):
        load_trace(tmp_path / "bad.npz")


def test_the_command_line_fails_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as code:
        trace_tool.main(["describe", str(tmp_path / "missing.npz")])
    assert code.value.code == 2
    assert capsys.readouterr().err.strip().endswith("does not exist")
