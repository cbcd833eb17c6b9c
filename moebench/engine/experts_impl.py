"""The hook into transformers: a registered experts implementation that tells the engine
which experts each layer needs, then has the engine's transport run the family's own expert
computation (on the model's weights for the virtual transport, on the slot pool for the real one).

transformers 5.x dispatches every fused-experts module through `ALL_EXPERTS_FUNCTIONS`
(selected by `set_experts_implementation`), so attention, norms and routers keep running as
the family wrote them, and outputs stay bit-identical to the plain model's.
"""

from __future__ import annotations

from contextlib import contextmanager

from transformers.integrations.moe import ALL_EXPERTS_FUNCTIONS

from moebench.models.loaded import LoadedModel

NAME = "moebench"


def _moebench_experts_forward(self, hidden_states, top_k_index, top_k_weights):
    engine, layer = self._moebench_engine, self._moebench_layer
    draft = engine.drafting
    routed, computes = top_k_index.detach().cpu().numpy(), None
    restrict = engine.draft_restriction()
    if restrict is not None:  # a resident-experts draft: the target's own slots
        top_k_index, top_k_weights = restrict(layer, hidden_states, top_k_index, top_k_weights)
        computes, draft = top_k_index.detach().cpu().numpy(), False
    engine.on_moe_layer(layer, routed, hidden_states, draft_computes=computes)
    return engine.transport.compute(
        self, self._moebench_inner, layer, hidden_states, top_k_index, top_k_weights, draft=draft
    )


ALL_EXPERTS_FUNCTIONS.register(NAME, _moebench_experts_forward)


@contextmanager
def engine_installed(loaded: LoadedModel, engine):
    """Route every MoE layer's expert execution through `engine` for the duration."""
    model = loaded.model
    previous = model.config._experts_implementation or "eager"
    for layer in loaded.layers:
        experts = layer.experts
        inner = (
            ALL_EXPERTS_FUNCTIONS[previous]
            if previous in ALL_EXPERTS_FUNCTIONS
            else type(experts).forward.__wrapped__
        )
        experts._moebench_inner = inner
        experts._moebench_engine = engine
        experts._moebench_layer = layer.index
    model.set_experts_implementation(NAME)
    try:
        with engine.transport.installed(loaded):
            yield engine
    finally:
        model.set_experts_implementation(previous)
        for layer in loaded.layers:
            for attr in ("_moebench_inner", "_moebench_engine", "_moebench_layer"):
                delattr(layer.experts, attr)
