import pytest

from moebench.config import load_run_config
from moebench.errors import ConfigError


def valid() -> dict:
    return {
        "model": {"name": "m", "family": "mixtral", "source": "random", "arch": {}},
        "hardware": {
            "name": "h",
            "peak_flops": 1e12,
            "hbm_bytes_per_sec": 1e12,
            "h2d_bytes_per_sec": 1e10,
            "h2d_latency_sec": 0,
            "launch_sec": 0,
            "memory_gb": 40,
        },
        "method": {"name": "full_resident"},
        "workload": {"name": "w"},
        "eval": {},
        "logger": {},
    }


def test_valid_config_loads_and_coerces_ints_to_floats():
    cfg = load_run_config(valid() | {"seed": 3})
    assert cfg.seed == 3 and cfg.hardware.memory_gb == 40.0
    assert isinstance(cfg.hardware.memory_gb, float)


@pytest.mark.parametrize(
    "patch, key",
    [
        ({"sed": 1}, "sed"),
        ({"workload": {"name": "w", "new_tokens": 0}}, "workload.new_tokens"),
        ({"method": {"name": "x", "budget_gb": -2}}, "method.budget_gb"),
        ({"seed": "abc"}, "seed"),
        ({"clock": "sundial"}, "clock"),
        ({"model": {"name": "m", "family": "gpt"}}, "model.family"),
        ({"hardware": {"name": "h"}}, "hardware.peak_flops"),
        ({"force": 1}, "force"),
        ({"workload": {"name": "w", "tapes": 0}}, "workload.tapes"),
        ({"model": {"name": "m", "family": "mixtral", "train_seed": 2}}, "model.train_seed"),
        (
            {"model": {"name": "m", "family": "mixtral", "source": "proxy", "train_seed": -1}},
            "model.train_seed",
        ),
    ],
)
def test_bad_values_name_their_key(patch, key):
    with pytest.raises(ConfigError) as info:
        load_run_config(valid() | patch)
    assert info.value.key == key
    assert "\n" not in str(info.value)


def test_tapes_count_only_when_sampling_and_keep_one_tape_run_keys():
    from moebench.records import run_key

    sampled = valid() | {"workload": {"name": "w", "decoding": "sample", "tapes": 3}}
    cfg = load_run_config(sampled)
    assert cfg.workload.num_sequences == 3 * cfg.workload.num_prompts
    greedy = load_run_config(valid() | {"workload": {"name": "w", "tapes": 3}})
    assert greedy.workload.num_sequences == greedy.workload.num_prompts
    assert run_key(greedy) == run_key(load_run_config(valid()))  # tapes=3 changes no greedy run


def test_a_training_seed_is_another_proxy_in_another_cache_entry():
    from moebench.models.train import cache_key, proxy_spec

    assert proxy_spec("proxy_ci").recipe.seed == 0
    assert proxy_spec("proxy_ci", 2).recipe.seed == 2
    assert cache_key(proxy_spec("proxy_ci"), "c") != cache_key(proxy_spec("proxy_ci", 2), "c")
