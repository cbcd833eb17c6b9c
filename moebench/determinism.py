"""What decides the bits of a float computation on a CPU, and the knobs we hold fixed.

Three things pick how a float sum is rounded:
- the thread count: a reduction split over threads sums in another order, so code that must
  be reproducible runs inside `fixed_threads(n)`;
- ATen's vectorised kernels, which torch picks by CPU (AVX2, AVX-512); the `default` set is
  the same code on every x86-64 CPU (`ATEN_CPU_CAPABILITY=default`);
- MKL's matmul code path, which MKL picks by CPU and vendor; its conditional numerical
  reproducibility branch `COMPATIBLE` is the same on Intel and AMD (`MKL_CBWR=COMPATIBLE`).

Both variables are read once, when torch first dispatches a kernel, so `pin_process_numerics`
sets them as moebench is imported, before torch. Pinned, a proxy trains to the same bits and
a virtual-clock record has the same metrics on any x86-64 CPU with the same torch build; it
costs ~1.5x in training time and a little in inference (reports/LOG.md). `MOEBENCH_NUMERICS=
native` opts out (the CPU's fastest kernels); every record names the kernels that ran
(`env.numerics`), and proxies are trained pinned in any case (in a pinned subprocess when
this process is not pinned).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

MODE_VARIABLE = "MOEBENCH_NUMERICS"
MODES = ("pinned", "native")
# What a pinned process sets before torch is imported (overriding the environment: a kernel
# choice left to the user's shell is a kernel choice left to the CPU).
PINNED_ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
# MKL's codes for its branches (mkl.h: MKL_CBWR_*).
MKL_BRANCH_NAMES = {0: "UNSET", 1: "OFF", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2"}


def numerics_mode(environ=os.environ) -> str:
    """`pinned` (default) or `native`, from MOEBENCH_NUMERICS; anything else is one line."""
    mode = environ.get(MODE_VARIABLE, "pinned").strip().lower() or "pinned"
    if mode not in MODES:
        raise SystemExit(f"moebench: {MODE_VARIABLE}={mode!r} is not one of {', '.join(MODES)}")
    return mode


def pinned_environment(base=os.environ) -> dict[str, str]:
    """`base` with the pinned kernel choice: the environment a pinned subprocess gets."""
    return {**base, **PINNED_ENV, MODE_VARIABLE: "pinned"}


def pin_process_numerics() -> None:
    """Pin this process's kernels unless the user chose native ones. Runs when moebench is
    imported; if torch was imported first and already chose its kernels, `numerics_state`
    says so and proxies are then trained in a pinned subprocess."""
    if numerics_mode() == "pinned":
        os.environ.update(PINNED_ENV)


def mkl_branch() -> str | None:
    """The code path MKL runs (`COMPATIBLE` when pinned), or None where torch has no MKL."""
    import torch

    if not torch.backends.mkl.is_available():
        return None
    get = _mkl_cbwr_get()
    if get is None:
        return "unknown"
    code = get(1)  # MKL_CBWR_BRANCH
    return MKL_BRANCH_NAMES.get(code, f"code {code}")


@cache
def _mkl_cbwr_get():
    """MKL's own query, where torch's library exports it (it links MKL statically)."""
    import torch

    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll"):
        path = Path(torch.__file__).parent / "lib" / name
        if path.exists():
            try:
                fn = ctypes.CDLL(str(path)).mkl_serv_cbwr_get
            except (OSError, AttributeError):
                return None
            fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int]
            return fn
    return None


def numerics_state() -> dict[str, object]:
    """The kernels this process runs, for every record and trained proxy: whether they are the
    pinned ones, ATen's capability, MKL's branch and the intra-op thread count. Where MKL's
    branch cannot be read back ("unknown"), the environment it started from stands for it."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    branch = mkl_branch()
    mkl_pinned = branch in (None, "COMPATIBLE") or (
        branch == "unknown" and os.environ.get("MKL_CBWR") == PINNED_ENV["MKL_CBWR"]
    )
    pinned = capability == "DEFAULT" and mkl_pinned
    return {
        "mode": numerics_mode(),
        "pinned": pinned,
        "aten_capability": capability,
        "mkl_branch": branch,
        "torch_threads": torch.get_num_threads(),
    }


def process_is_pinned() -> bool:
    return bool(numerics_state()["pinned"])


def warn_if_unpinned() -> None:
    """One line when this process asked for pinned kernels and did not get them (torch was
    imported before moebench, or set its kernels otherwise)."""
    state = numerics_state()
    if state["mode"] == "pinned" and not state["pinned"]:
        print(
            f"moebench: kernels {kernels_text(state)} in this process: import moebench before "
            "torch; records name the kernels that ran",
            file=sys.stderr,
        )


def kernels_text(state: dict | None) -> str:
    """`pinned (ATen DEFAULT, MKL COMPATIBLE)` or `not pinned (...)`, from `numerics_state`."""
    if not state:
        return "unrecorded"
    pinned = "pinned" if state["pinned"] else "not pinned"
    return f"{pinned} (ATen {state['aten_capability']}, MKL {state['mkl_branch']})"


@contextmanager
def fixed_threads(count: int) -> Iterator[None]:
    """Run the body at `count` intra-op threads, whatever the machine or OMP_NUM_THREADS says."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_identity() -> dict[str, str]:
    """The CPU model and the vector ISA flags it offers: what the kernels would pick unpinned."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name") and model == (
                platform.processor() or platform.machine()
            ):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    return {
        "model": model,
        "isa": " ".join(f for f in KERNEL_ISA_FLAGS if f in flags),
        "machine": platform.machine(),
    }


# CPU flags that change which kernels ATen and MKL pick when they are not pinned.
KERNEL_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
