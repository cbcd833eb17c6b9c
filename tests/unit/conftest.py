import pytest

from moebench.config import HardwareConfig


@pytest.fixture
def a100() -> HardwareConfig:
    return HardwareConfig(
        name="a100",
        peak_flops=312e12,
        hbm_bytes_per_sec=1555e9,
        h2d_bytes_per_sec=25e9,
        h2d_latency_sec=7e-6,
        launch_sec=5e-6,
        memory_gb=40,
    )
