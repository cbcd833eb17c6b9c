"""GPU checks of the real transport (skipped without CUDA; a few minutes on one GPU).

    .venv/bin/python -m pytest -q tests/gpu -m gpu -s

Nobody on the project's CPU machines can run these: they are the checks the CPU tests cannot
make (pinned memory, asynchronous copies, copy/compute overlap, the free event's protection,
flat device memory, the caching host allocator's rounding, tokens on CUDA, hf_offload as
accelerate's own offload, and the virtual clock against the cuda clock). Each prints what it
measured.
"""

from __future__ import annotations

import time

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

DEV = torch.device("cuda")


def real_method(name, loaded, budget_gb, chooser_seed=None):
    from moebench.config import load_run_config
    from moebench.engine.costs import CostModel
    from moebench.methods.registry import build_method
    from moebench.models.shape import shape_from_hf_config
    from tests.tiny import hardware
    from tests.unit.test_config import valid

    data = valid()
    data["method"] = {"name": name, "budget_gb": budget_gb, "options": {}}
    data["workload"] = {"name": "t", "prompt_len": 7, "new_tokens": 16}
    data["backend"], data["device"] = "real", "cuda"
    return build_method(
        load_run_config(data), loaded, CostModel(hardware(), shape_from_hf_config(loaded.hf_config))
    )


def tiny(family="mixtral"):
    from tests.tiny import tiny_model

    return tiny_model(family)


def test_host_store_is_pinned_and_its_bytes_are_close_to_what_was_asked():
    from tests.integration.test_offload_lossless import small_budget_gb

    loaded = tiny()
    budget, _ = small_budget_gb(loaded)
    m = real_method("mixtral_offloading", loaded, budget)
    store = m.engine.transport.store
    assert all(buf.is_pinned() for buf in store.values())
    asked = sum(buf.numel() * buf.element_size() for buf in store.values())
    stats = torch.cuda.host_memory_stats() if hasattr(torch.cuda, "host_memory_stats") else {}
    reserved = stats.get("reserved_bytes.all.current", stats.get("allocated_bytes.all.current"))
    print(f"pinned asked {asked} B, host allocator holds {reserved} B")
    if reserved:
        assert reserved < 2 * asked + (
            64 << 20
        )  # the caching host allocator rounds up, not by multiples


def test_a_non_blocking_copy_returns_before_it_completes_and_overlaps_a_matmul_loop():
    host = torch.empty(256 << 20, dtype=torch.uint8).pin_memory()
    dev = torch.empty_like(host, device=DEV)
    a = torch.randn(4096, 4096, device=DEV, dtype=torch.bfloat16)
    copy_stream = torch.cuda.Stream()
    torch.cuda.synchronize()

    start = time.perf_counter()
    with torch.cuda.stream(copy_stream):
        dev.copy_(host, non_blocking=True)
    returned = time.perf_counter() - start
    copy_stream.synchronize()
    copy_alone = time.perf_counter() - start
    assert returned < copy_alone / 4, (returned, copy_alone)

    def matmuls():
        for _ in range(20):
            a @ a

    start = time.perf_counter()
    matmuls()
    torch.cuda.synchronize()
    compute_alone = time.perf_counter() - start
    start = time.perf_counter()
    with torch.cuda.stream(copy_stream):
        dev.copy_(host, non_blocking=True)
    matmuls()
    torch.cuda.synchronize()
    both = time.perf_counter() - start
    print(
        f"copy {copy_alone * 1e3:.2f} ms, matmuls {compute_alone * 1e3:.2f} ms, together "
        f"{both * 1e3:.2f} ms"
    )
    assert both < 0.85 * (copy_alone + compute_alone)


def _overwrite_while_reading(wait_for_free: bool) -> bool:
    """A long kernel reads slot 0 while a load overwrites it; True if the kernel saw the old
    expert (the result equals the reference)."""
    from tests.integration.test_offload_lossless import small_budget_gb

    loaded = tiny()
    budget, _ = small_budget_gb(loaded)
    transport = real_method("mixtral_offloading", loaded, budget).engine.transport
    layer = loaded.layers[0].index
    expert = next(e for (lay, e) in transport.slot_of if lay == layer)
    slot = transport.slot_of[(layer, expert)]
    gate_up, _ = transport.pool[layer]
    torch.cuda.synchronize()
    x = torch.randn(1 << 14, gate_up.shape[-1], device=DEV, dtype=gate_up.dtype)
    reference = (x @ gate_up[slot].T).sum()
    torch.cuda._sleep(50_000_000)  # keep the compute stream busy so the read comes late
    result = (x @ gate_up[slot].T).sum()
    event = torch.cuda.Event()
    event.record()
    if wait_for_free:
        transport.released[(layer, slot)] = event
    else:
        transport.released.pop((layer, slot), None)
    transport.evict(layer, expert)
    other = next(
        e for e in range(loaded.layers[0].num_experts) if (layer, e) not in transport.slot_of
    )
    transport.load(layer, other)  # lands in the freed slot
    torch.cuda.synchronize()
    return bool(torch.allclose(result, reference))


def test_the_free_event_protects_a_slot_still_being_read():
    assert _overwrite_while_reading(wait_for_free=True)
    assert not _overwrite_while_reading(wait_for_free=False), (
        "without the wait the copy should win the race"
    )


def test_device_memory_stays_flat_with_no_allocator_retries_and_tokens_equal_plain():
    from moebench.bench.decode import decode
    from tests.integration.test_offload_lossless import small_budget_gb

    loaded = tiny("qwen2_moe")
    prompt = torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(1))
    plain = decode(loaded, prompt, 16)  # on the CPU, the model's own weights
    budget, _ = small_budget_gb(loaded)
    m = real_method("mixtral_offloading", loaded, budget)
    m.generate(prompt, 16)
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    tokens, _ = m.generate(prompt, 16)
    after = torch.cuda.memory_allocated()
    stats = torch.cuda.memory_stats()
    print(f"device memory {before} -> {after} B, peak {torch.cuda.max_memory_allocated()} B")
    assert tokens == plain
    assert abs(after - before) < (1 << 20)
    assert stats.get("num_alloc_retries", 0) == 0


def test_hf_offload_is_accelerates_own_offload_on_the_cuda_clock():
    """hf_offload on backend=real device=cuda: accelerate's cpu_offload hooks move each
    experts module's weights per forward; tokens equal plain decoding; timed by CUDA events."""
    from moebench.bench.decode import decode
    from moebench.engine.transport import AccelerateOffloadTransport
    from tests.integration.test_offload_lossless import small_budget_gb

    loaded = tiny("mixtral")
    prompt = torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(4))
    plain = decode(loaded, prompt, 16)
    budget, shape = small_budget_gb(loaded)
    m = real_method("hf_offload", loaded, budget + shape.num_experts * shape.expert_bytes / 1e9)
    assert isinstance(m.engine.transport, AccelerateOffloadTransport) and m.clock_label == "cuda"
    tokens, steps = m.generate(prompt, 16)
    print(f"hf_offload on cuda: {sum(steps[1:]) / 15 * 1e3:.2f} ms/token (cuda events)")
    assert tokens == plain and all(s > 0 for s in steps)


def test_virtual_clock_against_the_cuda_clock():
    """The clock-check configs on the GPU: virtual (h200 profile) against CUDA events. Prints
    the ratios; the bound is loose because the profile's link figures are not measured here."""
    import json

    from moebench.tools import clock_check
    from moebench.tools.check_model import run

    ratios = {}
    for check in clock_check.CHECKS:
        tpot = {}
        for backend in ("real", "virtual"):
            path = run(
                "/tmp/moebench_gpu_check",
                [
                    *clock_check.check_overrides(check, True, device="cuda"),
                    f"backend={backend}",
                    "hardware=h200",
                ],
            )
            tpot[backend] = json.loads(path.read_text())["metrics"]["tpot_sec_mean"]
        ratios[(check.method, check.slots)] = tpot["virtual"] / tpot["real"]
    print({f"{m}@{s}": round(r, 3) for (m, s), r in ratios.items()})
    assert all(0.2 < r < 5 for r in ratios.values())
