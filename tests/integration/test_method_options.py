"""A mistyped method option ends in one line, fast, before any model is built."""

import time

import pytest

from tests.conftest import run_cli

# (method, experiment-free overrides that make a valid run of it, the bad override)
MISTYPED = {
    "mixtral_offloading unknown key": (
        "method=mixtral_offloading",
        [],
        "+method.options.polcy=lru",
    ),
    "mixtral_offloading bad choice": (
        "method=mixtral_offloading",
        [],
        "method.options.policy=fifo",
    ),
    "mixtral_offloading belady without a trace": (
        "method=mixtral_offloading",
        [],
        "method.options.policy=belady",
    ),
    "prism unknown key": ("method=prism", [], "+method.options.gates=cg"),
    "prism wrong type": ("method=prism", [], "method.options.n=four"),
    "prism bad partition": ("method=prism", [], "method.options.partition=greedy"),
    "topk unknown key": ("method=topk", [], "+method.options.topk=1"),
    "topk wrong type": ("method=topk", [], "method.options.top_k=1.5"),
    "cloud unknown key": ("method=cloud", ["workload=poisson_dsv2"], "+method.options.bmax=8"),
    "cloud bad choice": ("method=cloud", ["workload=poisson_dsv2"], "method.options.policy=lifo"),
    "cloud out of range": ("method=cloud", ["workload=poisson_dsv2"], "method.options.b_max=0"),
    "speq wrong type": ("method=speq", [], "method.options.prefetch=sometimes"),
    "next_layer_prefetch bad choice": (
        "method=next_layer_prefetch",
        [],
        "method.options.issue=never",
    ),
}


@pytest.mark.parametrize("method,extra,bad", MISTYPED.values(), ids=MISTYPED.keys())
def test_mistyped_option_is_one_line_before_any_model(method, extra, bad, results_dir, tmp_path):
    cache = tmp_path / "cache"  # a model build would train a proxy into it
    cache.mkdir()
    start = time.perf_counter()
    proc = run_cli(
        "model=proxy_dsv2lite",
        method,
        *extra,
        bad,
        f"results_dir={results_dir}",
        env={"MOEBENCH_CACHE": str(cache)},
    )
    seconds = time.perf_counter() - start
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("moebench: config error: method.options."), (
        proc.stderr
    )
    assert bad.split("=")[0].split(".")[-1] in lines[0]
    assert not any(cache.iterdir()) and not results_dir.exists()
    assert seconds < 30, f"{seconds:.1f} s: the check ran after something heavy"


def test_the_same_mistake_through_execute_fails_before_the_model(tmp_path, monkeypatch):
    """A caller that skips the command line (regress, a notebook) gets the same check."""
    from moebench.cli import compose_run_config
    from moebench.errors import ConfigError
    from moebench.runner import execute

    monkeypatch.setattr("moebench.runner.build_model", lambda *_: pytest.fail("model built"))
    cfg = compose_run_config(["model=proxy_dsv2lite", "method=topk", f"results_dir={tmp_path}"])
    cfg.method.options["top_kk"] = 1
    with pytest.raises(ConfigError, match="method.options.top_kk"):
        execute(cfg)
