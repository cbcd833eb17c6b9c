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
    ],
)
def test_bad_values_name_their_key(patch, key):
    with pytest.raises(ConfigError) as info:
        load_run_config(valid() | patch)
    assert info.value.key == key
    assert "\n" not in str(info.value)
