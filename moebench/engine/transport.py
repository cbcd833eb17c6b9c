"""Transports: what moving an expert means under the engine's decisions.

The engine (engine/offload.py) decides what to hold and when to move it; a transport carries
those decisions out and times them. Both transports take the same calls (`load`, `evict`,
`compute`, `begin_step`/`end_step`, `now`), so no method or engine code asks which one runs:

- `VirtualTransport`: nothing moves; experts compute from the model's own weights and a step
  takes the virtual clock's modeled seconds.
- `RealTransport`: every expert lives in a host store (one contiguous buffer per expert,
  pinned on CUDA), the memory plan's slots are allocated once on the device, a load is a real
  copy into a slot, and each MoE layer computes from the slots (expert ids remapped to slots).
  The model's own expert parameters move to the meta device while it is installed, so no code
  path can read them. Steps are timed by the wall clock on a CPU and by CUDA events on a GPU.
  The stream/event code is written against `torch.get_device_module(device)`; on a CPU its
  streams and events are no-ops and every copy is synchronous (copies never overlap compute).
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager

import torch
from torch import nn

from moebench.errors import ConfigError


class NoSlots:
    """A transport that keeps no slots of its own: loads and evictions move nothing, and each
    layer runs the family's experts function on whatever weights the module has."""

    def load(self, layer: int, expert: int) -> None:
        pass

    def evict(self, layer: int, expert: int) -> None:
        pass

    def compute(self, module, inner, layer, hidden, top_k_index, top_k_weights, draft: bool):
        return inner(module, hidden, top_k_index, top_k_weights)


class VirtualTransport(NoSlots):
    """The virtual clock's transport: modeled copies, the model's own weights."""

    clock_label = "virtual"
    models_draft_copies = True  # an offloaded draft's copies are modeled like the target's

    @contextmanager
    def installed(self, loaded):
        yield

    def begin_step(self) -> None:
        pass

    def end_step(self, virtual_sec: float) -> float:
        return virtual_sec

    def now(self, virtual_now: float) -> float:
        return virtual_now


def _move_non_meta(model: nn.Module, device: torch.device) -> None:
    """Move every parameter and buffer that is not on the meta device (Module.to cannot skip)."""
    for module in model.modules():
        for tensor in [*module._parameters.values(), *module._buffers.values()]:
            if tensor is not None and not tensor.is_meta and tensor.device != device:
                tensor.data = tensor.data.to(device)


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when present, else the CPU; `cuda` without CUDA is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", name, "cpu or auto: this machine has no CUDA device")
    return torch.device(name)


class RealClock:
    """A real transport's clock: CUDA events on a GPU, the wall clock on a CPU."""

    cuda: bool
    dev: object

    def begin_step(self) -> None:
        if self.cuda:
            self._start_event = self.dev.Event(enable_timing=True)
            self._start_event.record()
        self._start = time.perf_counter()

    def end_step(self, virtual_sec: float) -> float:
        if self.cuda:
            end = self.dev.Event(enable_timing=True)
            end.record()
            end.synchronize()
            return self._start_event.elapsed_time(end) / 1e3
        return time.perf_counter() - self._start

    def now(self, virtual_now: float) -> float:
        if self.cuda:
            self.dev.synchronize()
        return time.perf_counter()


class RealTransport(RealClock):
    """Host store + device slot pool + real copies, timed by the wall clock or CUDA events."""

    models_draft_copies = False  # a draft's experts stay on the device (no offloaded INT4 draft)

    def __init__(self, loaded, slots_per_layer: int, device: torch.device):
        self.device = device
        self.dev = torch.get_device_module(device)
        self.cuda = device.type == "cuda"
        self.clock_label = "cuda" if self.cuda else "wall"
        self.store: dict[tuple[int, int], torch.Tensor] = {}  # (layer, expert) -> host buffer
        self.pool: dict[
            int, tuple[torch.Tensor, torch.Tensor]
        ] = {}  # layer -> (gate_up, down) slots
        self.slot_of: dict[tuple[int, int], int] = {}
        self.free: dict[int, list[int]] = {}
        self.ready: dict[tuple[int, int], object] = {}  # (layer, slot) -> event after its copy
        self.released: dict[
            tuple[int, int], object
        ] = {}  # (layer, slot) -> event after its last kernel
        self.copy_stream = self.dev.Stream()
        # on a CPU, where copies and kernels are synchronous: wall seconds spent copying
        # experts and running the experts function (the clock check splits a step with them)
        self.wall_copy_sec = self.wall_experts_sec = 0.0
        for view in loaded.layers:
            gate_up, down = view.experts.gate_up_proj.data, view.experts.down_proj.data
            self._take_layer(view.index, view.experts)
            self.pool[view.index] = (
                torch.empty(
                    (slots_per_layer, *gate_up.shape[1:]), dtype=gate_up.dtype, device=device
                ),
                torch.empty((slots_per_layer, *down.shape[1:]), dtype=down.dtype, device=device),
            )
            self.free[view.index] = list(range(slots_per_layer - 1, -1, -1))
        self.copies = 0

    def _take_layer(self, layer: int, experts: nn.Module) -> None:
        """Move one layer's experts into the host store without keeping a second copy: one
        host buffer per layer (pinned on CUDA) in which each expert's gate_up and down rows
        lie back to back (the expert's one contiguous buffer, `store[(layer, e)]`), and the
        model's fused parameters become strided views of it. Host memory then holds the
        experts once, plus one layer while it moves."""
        gate_up, down = experts.gate_up_proj.data, experts.down_proj.data
        count, gu, dn = gate_up.shape[0], gate_up[0].numel(), down[0].numel()
        buffer = torch.empty((count, gu + dn), dtype=gate_up.dtype, pin_memory=self.cuda)
        buffer[:, :gu].copy_(gate_up.reshape(count, gu))
        buffer[:, gu:].copy_(down.reshape(count, dn))
        experts.gate_up_proj = nn.Parameter(
            buffer[:, :gu].unflatten(1, gate_up.shape[1:]), requires_grad=False
        )
        experts.down_proj = nn.Parameter(
            buffer[:, gu:].unflatten(1, down.shape[1:]), requires_grad=False
        )
        for e in range(count):
            self.store[(layer, e)] = buffer[e]

    @property
    def pool_bytes(self) -> int:
        return sum(
            g.numel() * g.element_size() + d.numel() * d.element_size()
            for g, d in self.pool.values()
        )

    # --- what the engine decided -------------------------------------------------------
    def load(self, layer: int, expert: int) -> None:
        """Copy `expert` into a free slot of `layer` (on the copy stream, after the slot's
        last kernel), and mark the slot ready when the copy lands."""
        slot = self.free[layer].pop()
        self.slot_of[(layer, expert)] = slot
        gate_up, down = self.pool[layer]
        start = time.perf_counter()
        with self.dev.stream(self.copy_stream):
            if (layer, slot) in self.released:
                self.copy_stream.wait_event(self.released[(layer, slot)])
            self._copy_in(layer, expert, gate_up[slot], down[slot], non_blocking=self.cuda)
            event = self.dev.Event()
            event.record(self.copy_stream)
        self.wall_copy_sec += time.perf_counter() - start
        self.ready[(layer, slot)] = event
        self.copies += 1

    def evict(self, layer: int, expert: int) -> None:
        self.free[layer].append(self.slot_of.pop((layer, expert)))

    # --- the experts hook --------------------------------------------------------------
    @contextmanager
    def installed(self, loaded):
        """While installed, the model's expert parameters live on the meta device."""
        saved = {}
        for view in loaded.layers:
            ex = view.experts
            saved[view.index] = (ex.gate_up_proj, ex.down_proj)
            ex.gate_up_proj = nn.Parameter(ex.gate_up_proj.data.to("meta"), requires_grad=False)
            ex.down_proj = nn.Parameter(ex.down_proj.data.to("meta"), requires_grad=False)
        home = next(p.device for p in loaded.model.parameters() if not p.is_meta)
        _move_non_meta(
            loaded.model, self.device
        )  # non-expert weights to the device (no-op on a CPU)
        try:
            yield
        finally:
            _move_non_meta(loaded.model, home)
            for view in loaded.layers:
                view.experts.gate_up_proj, view.experts.down_proj = saved[view.index]

    def compute(self, module, inner, layer, hidden, top_k_index, top_k_weights, draft: bool):
        """The family's own experts function on the slot pool (ids remapped to slots). A
        draft forward reads the module's own (draft) weights; a layer that needs more experts
        than it has slots (a long prefill) computes from a staging buffer of them all."""
        start = time.perf_counter()
        try:
            return self._compute(module, inner, layer, hidden, top_k_index, top_k_weights, draft)
        finally:
            self.wall_experts_sec += time.perf_counter() - start

    def wall_split(self) -> dict[str, float]:
        """Wall seconds in expert copies and in the experts function (staging copies
        counted as copies); only on a CPU, where both are synchronous."""
        if self.cuda:
            return {}
        return {"wall_copy_sec": self.wall_copy_sec, "wall_experts_sec": self.wall_experts_sec}

    def _compute(self, module, inner, layer, hidden, top_k_index, top_k_weights, draft: bool):
        if draft:
            return inner(module, hidden, top_k_index, top_k_weights)
        needed = torch.unique(top_k_index).tolist()
        if all((layer, e) in self.slot_of for e in needed):
            slot_ids = {e: self.slot_of[(layer, e)] for e in needed}
            gate_up, down = self.pool[layer]
            stream = self.dev.current_stream()
            for slot in slot_ids.values():
                stream.wait_event(self.ready[(layer, slot)])
        else:
            slot_ids = {e: i for i, e in enumerate(needed)}
            start = time.perf_counter()
            gate_up, down = self._stage(layer, needed)
            staging = time.perf_counter() - start  # copies, inside the experts call's time
            self.wall_copy_sec += staging
            self.wall_experts_sec -= staging
        lookup = torch.full((module.num_experts,), -1, dtype=top_k_index.dtype)
        for e, slot in slot_ids.items():
            lookup[e] = slot
        view = copy.copy(module)
        view._parameters = {**module._parameters, "gate_up_proj": gate_up, "down_proj": down}
        view.num_experts = gate_up.shape[0]
        out = inner(view, hidden, lookup.to(top_k_index.device)[top_k_index], top_k_weights)
        if gate_up is self.pool[layer][0]:
            for slot in slot_ids.values():
                event = self.dev.Event()
                event.record(self.dev.current_stream())
                self.released[(layer, slot)] = event
        return out

    def _stage(self, layer: int, experts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        pool_gate_up, pool_down = self.pool[layer]
        gate_up = pool_gate_up.new_empty((len(experts), *pool_gate_up.shape[1:]))
        down = pool_down.new_empty((len(experts), *pool_down.shape[1:]))
        for i, e in enumerate(experts):
            self._copy_in(layer, e, gate_up[i], down[i])
        return gate_up, down

    def _copy_in(
        self,
        layer: int,
        expert: int,
        gate_up: torch.Tensor,
        down: torch.Tensor,
        non_blocking: bool = False,
    ) -> None:
        """Copy an expert's host buffer into one row of gate_up and one of down."""
        buffer, split = self.store[(layer, expert)], gate_up.numel()
        gate_up.copy_(buffer[:split].view_as(gate_up), non_blocking=non_blocking)
        down.copy_(buffer[split:].view_as(down), non_blocking=non_blocking)


class AccelerateOffloadTransport(NoSlots, RealClock):
    """`hf_offload` on a GPU as a user runs it: accelerate's `cpu_offload` hooks keep every
    experts module's weights in host memory and move them all to the device each time the
    layer runs (and drop them after; `compute` finds them there); the rest of the model lives
    on the device. The engine only charges the virtual clock beside it; no slots are kept.
    Only on CUDA: on a CPU host and device are the same memory, so there is nothing to
    offload (make_transport says so)."""

    models_draft_copies = False

    def __init__(self, device: torch.device):
        self.device, self.dev, self.cuda = (
            device,
            torch.get_device_module(device),
            device.type == "cuda",
        )
        self.clock_label = (
            "cuda" if self.cuda else "wall"
        )  # a CPU device only in tests of the hooks

    @contextmanager
    def installed(self, loaded):
        from accelerate import cpu_offload
        from accelerate.hooks import remove_hook_from_module

        saved = {v.index: (v.experts.gate_up_proj, v.experts.down_proj) for v in loaded.layers}
        home = next(p.device for p in loaded.model.parameters() if not p.is_meta)
        for view in (
            loaded.layers
        ):  # params to meta, a host state dict, a hook that brings them per forward
            cpu_offload(view.experts, execution_device=self.device)
        _move_non_meta(loaded.model, self.device)
        try:
            yield
        finally:
            for view in loaded.layers:
                remove_hook_from_module(view.experts)
                view.experts.gate_up_proj, view.experts.down_proj = saved[view.index]
            _move_non_meta(loaded.model, home)


def make_transport(
    backend: str,
    device_name: str,
    loaded,
    slots_per_layer: int,
    whole_layer: bool,
    budget_gb: float | None,
):
    """The one place that reads `backend`: the transport a run's engine moves experts with."""
    if backend == "virtual":
        return VirtualTransport()
    if loaded is None:
        raise ConfigError("backend", backend, "virtual for a trace replay (no model runs)")
    device = resolve_device(device_name)
    if whole_layer:
        if device.type == "cuda":
            return AccelerateOffloadTransport(device)
        raise ConfigError(
            "device",
            device_name,
            "cuda for a whole-layer method (hf_offload) on "
            "backend=real: its real counterpart is accelerate's offload to a GPU; "
            "on a CPU host and device are the same memory, so nothing is offloaded",
        )
    transport = RealTransport(loaded, slots_per_layer, device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if transport.pool_bytes > free:
            raise ConfigError(
                "method.budget_gb",
                budget_gb,
                f"a budget whose slot pool fits the device "
                f"({transport.pool_bytes / 1e9:.3g} GB asked, {free / 1e9:.3g} GB free)",
            )
    return transport
