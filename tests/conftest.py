"""Shared fixtures: repo paths and a helper that runs the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moebench.paths import REPO_ROOT as REPO
from moebench.paths import SHARED_DATA  # noqa: F401 - tests import it from here


def run_cli(
    *args: str, cwd: Path | None = None, module: str = "moebench", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python -m moebench ARGS` in a subprocess (extra environment in `env`)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", WANDB_MODE="disabled", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(autouse=True)
def private_recordings(tmp_path: Path, monkeypatch):
    """Every test records and replays in a folder of its own: a recording left in the user's
    cache by one test (or an earlier session) would turn another test's live run into a
    replay, a different path than the one it means to test."""
    monkeypatch.setenv("MOEBENCH_RECORDINGS", str(tmp_path / "recordings"))


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "results"


@pytest.fixture(scope="session")
def ci_cache(tmp_path_factory):
    """A private cache with the small CI proxy trained once (~20 s) for the whole session."""
    from moebench.models import train as training

    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("MOEBENCH_CACHE", str(cache))
    folder = training.ensure_proxy("proxy_ci")
    yield cache, folder
    mp.undo()
