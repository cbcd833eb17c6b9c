"""Inference methods: a plain dict maps each method name to the class that runs it."""

from __future__ import annotations

from moebench.methods.offload import (
    FullResident,
    HfOffload,
    MixtralOffloading,
    NextLayerPrefetch,
    OnDemand,
    TopK,
)

METHODS = {
    "full_resident": FullResident,
    "hf_offload": HfOffload,
    "ondemand": OnDemand,
    "mixtral_offloading": MixtralOffloading,
    "next_layer_prefetch": NextLayerPrefetch,
    "topk": TopK,
}
