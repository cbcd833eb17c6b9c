"""Same bits on any x86-64 CPU, proved on one machine by changing the kernels torch, MKL and
numpy would pick, as another CPU would: proxy_ci trained from an empty cache and the quick
regress keys must equal the golden ones under each setting.

The settings are the levers a CPU pulls: ATen's vector kernels (`ATEN_CPU_CAPABILITY`), MKL's
code path (`MKL_ENABLE_INSTRUCTIONS`), numpy's dispatched loops and a one-core machine's thread
pools. moebench pins the first two (determinism.py); the companion test shows each lever
really changes the kernels when moebench is told not to pin them.
"""

from __future__ import annotations

import os
import subprocess
import sys

from moebench.paths import REPO_ROOT


def _numpy_avx512_features() -> str:
    """numpy's AVX-512 loops this CPU runs (an AVX2 CPU has none): the ones to switch off."""
    from numpy._core._multiarray_umath import __cpu_features__

    return " ".join(f for f, on in __cpu_features__.items() if on and f.startswith("AVX512"))


# What a CPU of another kind would choose, one setting each.
SETTINGS = {
    "aten_default": {"ATEN_CPU_CAPABILITY": "default"},
    "aten_avx2_small_machine": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "NPY_DISABLE_CPU_FEATURES": _numpy_avx512_features(),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "RAYON_NUM_THREADS": "1",
    },
    "mkl_avx2_own_aten": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def _environment(extra: dict[str, str], cache) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ATEN_", "MKL_", "NPY_", "MOEBENCH_NUMERICS"))
    }
    return (
        env
        | {"MOEBENCH_CACHE": str(cache), "PYTHONWARNINGS": "ignore", "WANDB_MODE": "disabled"}
        | extra
    )


def test_proxy_and_regress_keys_are_the_golden_ones_under_every_kernel_setting(tmp_path):
    """About 2 min on 2 cores: three proxy trainings and quick regress runs."""
    runs = {}
    for name, extra in SETTINGS.items():  # one thread each: two cores run them side by side
        runs[name] = subprocess.Popen(
            [sys.executable, "-m", "moebench.regress", "--quick"],
            cwd=REPO_ROOT,
            env=_environment(extra, tmp_path / name),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    failures = {}
    for name, proc in runs.items():
        out, _ = proc.communicate(timeout=900)
        summary = [line for line in out.splitlines() if line.startswith("regress:")]
        weights_differ = [
            line for line in out.splitlines() if "weights" in line and "differ" in line
        ]
        if (
            proc.returncode != 0
            or weights_differ
            or not summary
            or not summary[-1].endswith(" 0 failed")
        ):
            failures[name] = "\n".join(weights_differ + out.splitlines()[-25:])
    assert not failures, "\n\n".join(f"--- {name}\n{text}" for name, text in failures.items())


def _kernels(extra: dict[str, str], tmp_path) -> str:
    code = (
        "import moebench, torch; from moebench.determinism import numerics_state; s = "
        "numerics_state(); print(s['aten_capability'], s['mkl_branch'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_environment(extra, tmp_path),
        text=True,
        capture_output=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_each_setting_moves_the_kernels_unless_moebench_pins_them(tmp_path):
    native = {
        name: _kernels(extra | {"MOEBENCH_NUMERICS": "native"}, tmp_path)
        for name, extra in SETTINGS.items()
    }
    pinned = {name: _kernels(extra, tmp_path) for name, extra in SETTINGS.items()}
    assert set(pinned.values()) == {"DEFAULT COMPATIBLE"}
    assert (
        native["aten_default"].startswith("DEFAULT ") and "COMPATIBLE" not in native["aten_default"]
    )
    if "AVX2" in native["mkl_avx2_own_aten"] or "AVX512" in native["mkl_avx2_own_aten"]:
        assert native["aten_avx2_small_machine"].startswith("AVX2 ")  # a CPU with AVX2 or better
