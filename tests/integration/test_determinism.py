"""proxy_ci trained from nothing gives the bits the golden regress values were made with, at
the recipe's fixed thread count, whatever this process's thread count is."""

import json

import torch

from moebench import regress
from moebench.config import ModelConfig
from moebench.determinism import fixed_threads
from moebench.models import train as training


def test_proxy_ci_from_an_empty_cache_has_the_regress_weights(ci_cache):
    loaded = training.load_proxy(ModelConfig(name="proxy_ci", family="mixtral", source="proxy"))
    golden = json.loads(regress.GOLDEN_WEIGHTS.read_text())
    stats = json.loads((ci_cache[1] / "training.json").read_text())
    assert stats["torch_threads"] == training.PROXIES["proxy_ci"].recipe.torch_threads
    assert loaded.weights_sha256 == golden["weights_sha256"], regress.weights_note(
        {"weights_sha256": loaded.weights_sha256, "torch": torch.__version__, "cpu": stats["cpu"]},
        golden,
    )


def test_thread_count_is_part_of_the_cache_key():
    import dataclasses

    spec = training.PROXIES["proxy_ci"]
    two = dataclasses.replace(spec, recipe=dataclasses.replace(spec.recipe, torch_threads=2))
    assert training.cache_key(spec, "corpus") != training.cache_key(two, "corpus")


def test_fixed_threads_restores_the_callers_count():
    before = torch.get_num_threads()
    with fixed_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_records_name_the_kernels_that_ran(results_dir):
    """Every record says whether its kernels were the pinned ones, and which ran."""
    import json

    from moebench import runner
    from tests.integration.test_runner import debug_config

    numerics = json.loads(runner.execute(debug_config(results_dir)).read_text())["env"]["numerics"]
    assert numerics == {
        "mode": "pinned",
        "pinned": True,
        "aten_capability": "DEFAULT",
        "mkl_branch": "COMPATIBLE" if torch.backends.mkl.is_available() else None,
        "torch_threads": 1,
    }


def test_an_unpinned_process_trains_proxies_in_a_pinned_subprocess(tmp_path, monkeypatch):
    """A caller whose kernels are not pinned (it ran torch before importing moebench, or chose
    MOEBENCH_NUMERICS=native) still gets pinned weights: the cache holds one kind of proxy."""
    import subprocess

    import pytest

    calls = []

    def fake_run(cmd, **kw):  # stands in for the training process; writes nothing
        calls.append((cmd, kw["env"]))
        return subprocess.CompletedProcess(cmd, 1)

    monkeypatch.setattr(training, "process_is_pinned", lambda: False)
    monkeypatch.setattr(training.subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match="pinned subprocess failed"):
        training.train_proxy(training.PROXIES["proxy_ci"], tmp_path / "entry")
    ((cmd, env),) = calls
    assert cmd[-3:] == ["moebench.models", "train", "proxy_ci"]
    assert env["ATEN_CPU_CAPABILITY"] == "default" and env["MKL_CBWR"] == "COMPATIBLE"
    assert env["MOEBENCH_NUMERICS"] == "pinned"


def test_an_mkl_branch_that_cannot_be_read_back_is_taken_from_the_environment(monkeypatch):
    """A torch build whose MKL query is not exported ('unknown') counts as pinned only when it
    started with MKL_CBWR=COMPATIBLE, so the pinned training subprocess never spawns another."""
    from moebench import determinism

    monkeypatch.setattr(determinism, "mkl_branch", lambda: "unknown")
    assert determinism.numerics_state()["pinned"]
    monkeypatch.setenv("MKL_CBWR", "AUTO")
    assert not determinism.numerics_state()["pinned"]
