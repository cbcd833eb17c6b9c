import pytest

from moebench.config import HardwareConfig
from tests.tiny import hardware


@pytest.fixture
def a100() -> HardwareConfig:
    return hardware()
