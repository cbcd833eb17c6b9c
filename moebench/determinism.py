"""What decides the bits of a float computation on a CPU, and the knob we hold fixed.

Float reductions split across threads sum in a different order, so training at 2 threads
gives other bits than at 1: code that must be reproducible on any core count runs inside
`fixed_threads(n)`. The CPU's instruction set (AVX2, AVX-512, AMX) picks other kernels in
torch and MKL, which also round differently; that is not pinned (the portable MKL branch
is several times slower and still not bit-stable across vendors), so `cpu_identity` goes
into every record and every trained proxy's metadata to explain a mismatch.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def fixed_threads(count: int) -> Iterator[None]:
    """Run the body at `count` intra-op threads, whatever the machine or OMP_NUM_THREADS says."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_identity() -> dict[str, str]:
    """The CPU model and the vector ISA torch dispatches to (e.g. AVX512): two machines
    whose identities differ may train the same proxy to other bits."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name") and model == (platform.processor() or platform.machine()):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    return {"model": model, "capability": torch.backends.cpu.get_cpu_capability(),
            "isa": " ".join(f for f in KERNEL_ISA_FLAGS if f in flags), "machine": platform.machine()}


# CPU flags that change which matmul kernels MKL and oneDNN pick.
KERNEL_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
