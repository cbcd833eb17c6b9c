"""The real transport moves real bytes: experts in a host store, a fixed slot pool, copies
into slots, compute from slots. Every lossless method emits the plain tokens on it, greedy
and sampled, on all six families (Prism: test_sampled_lossless); a corrupted slot changes them."""

import pytest
import torch

from moebench.bench.decode import decode
from moebench.bench.sampling import GREEDY, TokenChooser
from moebench.config import load_run_config
from moebench.engine.costs import CostModel
from moebench.engine.experts_impl import engine_installed
from moebench.engine.transport import RealTransport
from moebench.errors import ConfigError
from moebench.methods.registry import build_method
from tests.conftest import run_cli
from tests.integration.test_offload_lossless import hardware, small_budget_gb
from tests.integration.test_speq import speq_run
from tests.tiny import TINY_ARCH, tiny_model
from tests.unit.test_config import valid

NEW = 8
SAMPLE = TokenChooser(
    "sample", temperature=0.1, seed=2, prompt=0
)  # tiny logits: see test_sampled_lossless
METHODS_REAL = ["full_resident", "ondemand", "mixtral_offloading", "next_layer_prefetch"]


def real_run(method: str, budget_gb: float | None, **options):
    data = valid()
    data["method"] = {"name": method, "budget_gb": budget_gb, "options": options}
    data["workload"] = {"name": "t", "prompt_len": 7, "new_tokens": NEW}
    data["backend"], data["device"] = "real", "cpu"
    return load_run_config(data)


def prompt():
    return torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(9))


@pytest.mark.parametrize("chooser", [GREEDY, SAMPLE], ids=["greedy", "sampled"])
@pytest.mark.parametrize("family", sorted(TINY_ARCH))
def test_every_lossless_method_on_real_copies_emits_the_plain_tokens(family, chooser):
    loaded = tiny_model(family)
    plain = decode(loaded, prompt(), NEW, chooser=chooser)
    budget, shape = small_budget_gb(loaded)
    for method in METHODS_REAL:
        m = build_method(
            real_run(method, None if method == "full_resident" else budget),
            loaded,
            CostModel(hardware(), shape),
        )
        assert isinstance(m.engine.transport, RealTransport) and m.clock_label == "wall"
        plan = m.plan
        element = loaded.layers[
            0
        ].experts.gate_up_proj.element_size()  # the plan charges bf16; these are fp32
        assert (
            m.engine.transport.pool_bytes
            == plan["expert_slots_total"] * shape.expert_params * element
        )
        tokens, steps = m.generate(prompt(), NEW, chooser)
        assert tokens == plain, method
        assert all(s > 0 for s in steps)
    from moebench.engine.budget import int4_expert_bytes

    speq_budget = (
        budget
        + (
            int4_expert_bytes(shape) * shape.num_experts * len(shape.moe_layers)
            + shape.expert_bytes / 2
        )
        / 1e9
    )
    run = speq_run(speq_budget)
    run.backend, run.device = "real", "cpu"
    speq = build_method(run, loaded, CostModel(hardware(), shape))
    tokens, _ = speq.generate(prompt(), NEW, chooser)
    assert tokens == plain, "speq"


def test_the_models_own_experts_are_on_meta_while_installed():
    loaded = tiny_model("qwen2_moe")
    budget, shape = small_budget_gb(loaded)
    m = build_method(real_run("mixtral_offloading", budget), loaded, CostModel(hardware(), shape))
    with engine_installed(loaded, m.engine):
        assert all(
            v.experts.gate_up_proj.is_meta and v.experts.down_proj.is_meta for v in loaded.layers
        )
    assert not any(v.experts.gate_up_proj.is_meta for v in loaded.layers)


def test_the_host_store_holds_each_expert_once_in_one_contiguous_buffer():
    """No second host copy: the model's fused expert tensors are views of the store."""
    loaded = tiny_model("mixtral")
    before = {
        v.index: (v.experts.gate_up_proj.data.clone(), v.experts.down_proj.data.clone())
        for v in loaded.layers
    }
    budget, shape = small_budget_gb(loaded)
    m = build_method(real_run("mixtral_offloading", budget), loaded, CostModel(hardware(), shape))
    store = m.engine.transport.store
    for v in loaded.layers:
        gate_up, down = v.experts.gate_up_proj, v.experts.down_proj
        assert torch.equal(gate_up, before[v.index][0]) and torch.equal(down, before[v.index][1])
        for e in range(gate_up.shape[0]):
            buffer = store[(v.index, e)]
            assert buffer.is_contiguous() and buffer.numel() == gate_up[e].numel() + down[e].numel()
            assert gate_up[e].data_ptr() == buffer.data_ptr()  # the model reads the store itself
            assert (
                down[e].data_ptr() == buffer.data_ptr() + gate_up[e].numel() * buffer.element_size()
            )
    stored = sum(b.numel() * b.element_size() for b in store.values())
    model = sum(
        (v.experts.gate_up_proj.numel() + v.experts.down_proj.numel())
        * v.experts.gate_up_proj.element_size()
        for v in loaded.layers
    )
    assert stored == model  # once, not twice


def test_a_corrupted_slot_changes_the_tokens():
    """The lossless check can fail: scale one expert's slot after its copy lands."""
    loaded = tiny_model("mixtral")
    plain = decode(loaded, prompt(), NEW)
    budget, shape = small_budget_gb(loaded)
    m = build_method(real_run("mixtral_offloading", budget), loaded, CostModel(hardware(), shape))
    transport = m.engine.transport
    copy_in = transport.load

    def corrupting_load(layer, expert):
        copy_in(layer, expert)
        gate_up, down = transport.pool[layer]
        down[transport.slot_of[(layer, expert)]] *= 100.0

    transport.load = corrupting_load
    tokens, _ = m.generate(prompt(), NEW)
    assert transport.copies > len(
        transport.slot_of
    )  # misses were copied (and corrupted) during decode
    assert tokens != plain


def test_accelerates_offload_hooks_emit_the_plain_tokens():
    """hf_offload's GPU transport (accelerate's cpu_offload hooks per experts module), run here
    with the CPU as its execution device: the weights reach the module only inside its forward."""
    from moebench.engine.transport import AccelerateOffloadTransport

    loaded = tiny_model("qwen2_moe")
    plain = decode(loaded, prompt(), NEW, chooser=SAMPLE)
    budget, shape = small_budget_gb(loaded)
    virtual = real_run("hf_offload", budget + shape.num_experts * shape.expert_bytes / 1e9)
    virtual.backend = "virtual"
    m = build_method(virtual, loaded, CostModel(hardware(), shape))
    m.engine.transport = AccelerateOffloadTransport(torch.device("cpu"))
    at_rest = []  # a pre-hook runs before accelerate's hook brings the weights in
    hook = loaded.layers[0].experts.register_forward_pre_hook(
        lambda mod, _a: at_rest.append(mod.gate_up_proj.is_meta)
    )
    try:
        tokens, _ = m.generate(prompt(), NEW, SAMPLE)
    finally:
        hook.remove()
    assert tokens == plain and m.clock_label == "wall"
    assert at_rest and all(at_rest)
    assert not any(v.experts.gate_up_proj.is_meta for v in loaded.layers)  # given back afterwards


def test_hf_offload_has_no_real_counterpart_on_this_backend():
    loaded = tiny_model("mixtral")
    budget, shape = small_budget_gb(loaded)
    with pytest.raises(ConfigError, match="hf_offload"):
        build_method(real_run("hf_offload", budget + 1), loaded, CostModel(hardware(), shape))


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_cuda_without_cuda_is_one_line(results_dir):
    proc = run_cli("+experiment=debug", "backend=real", "device=cuda", f"results_dir={results_dir}")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "no CUDA" in lines[0], proc.stderr
    assert not list(results_dir.rglob("result.json"))


def test_ondemand_copies_each_decode_expert_once_into_its_slot(monkeypatch):
    """ondemand's experts leave at the layer's next access, not before its kernels run: a
    decode step computes from the slots its copies filled, and never stages a second copy
    (it did once, which made the CPU wall clock 1.4x the virtual one)."""
    loaded = tiny_model("mixtral")
    budget, shape = small_budget_gb(loaded)
    staged = []
    original = RealTransport._stage
    monkeypatch.setattr(
        RealTransport,
        "_stage",
        lambda self, layer, experts: staged.append(len(experts)) or original(self, layer, experts),
    )
    m = build_method(real_run("ondemand", budget), loaded, CostModel(hardware(), shape))
    tokens, _ = m.generate(prompt(), NEW, GREEDY)
    assert tokens == decode(loaded, prompt(), NEW)
    slots = m.plan["slots_per_layer"]
    assert all(n > slots for n in staged)  # only a prefill needing more experts than slots
    assert m.engine.transport.copies == m.engine.stats.h2d_bytes / m.engine.expert_bytes
