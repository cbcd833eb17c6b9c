"""The noise tape: keyed by (seed, prompt, position), order-free, and an exact sampler."""

import numpy as np
import torch

from moebench.bench.sampling import TokenChooser, gumbel_noise


def test_noise_depends_only_on_its_key():
    a = gumbel_noise(1, 2, 30, 16)
    assert np.array_equal(a, gumbel_noise(1, 2, 30, 16))
    assert not np.array_equal(a, gumbel_noise(1, 2, 31, 16))
    assert not np.array_equal(a, gumbel_noise(1, 3, 30, 16))
    assert not np.array_equal(a, gumbel_noise(2, 2, 30, 16))


def test_neighbouring_positions_share_no_noise():
    a, b = gumbel_noise(0, 0, 7, 4096), gumbel_noise(0, 0, 8, 4096)
    assert not np.isin(a, b).any()  # a stream offset (position p+1 = p shifted) would share values


def test_one_forward_of_many_rows_chooses_as_row_by_row():
    chooser = TokenChooser("sample", temperature=0.9, seed=5)
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(0))
    rows = chooser.choose(logits, list(range(10, 16)))
    assert rows == [chooser.one(logits[j], 10 + j) for j in range(6)]


def test_gumbel_max_samples_softmax_over_logits_over_t():
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0])
    t = 0.7
    draws = [TokenChooser("sample", t, seed=0, prompt=i).one(logits, 9) for i in range(8000)]
    freq = np.bincount(draws, minlength=4) / len(draws)
    expected = torch.softmax(logits / t, dim=0).numpy()
    assert np.abs(freq - expected).max() < 0.02  # ~4 standard errors at 8000 draws


def test_top_k_never_picks_outside_the_top_k():
    logits = torch.tensor([3.0, 2.9, -5.0, -5.0, 2.8])
    picks = {
        TokenChooser("sample", 5.0, top_k=2, seed=0, prompt=i).one(logits, 1) for i in range(300)
    }
    assert picks == {0, 1}


def test_greedy_is_argmax():
    logits = torch.tensor([[0.1, 0.7, 0.2], [0.9, 0.0, 0.1]])
    assert TokenChooser().choose(logits, [4, 5]) == [1, 0]


def test_default_temperature_is_the_one_the_committed_sweep_chose():
    import json

    from moebench.bench.sampling import DEFAULT_TEMPERATURE
    from moebench.paths import REPO_ROOT

    sweep = json.loads((REPO_ROOT / "reports" / "proxies" / "temperature.json").read_text())
    assert sweep["chosen"] == DEFAULT_TEMPERATURE


def test_choice_prefers_t_near_one_within_noise():
    from moebench.tools.temperature import NOISE, choose

    rows = [
        {"temperature": t, "errors": {"reuse": e}}
        for t, e in [(0.7, 0.09), (1.0, 0.05), (1.2, 0.04)]
    ]
    assert choose(rows) == 1.0
    rows[2]["errors"]["reuse"] = 0.05 - NOISE - 0.01
    assert choose(rows) == 1.2
