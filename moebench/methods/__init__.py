"""Inference methods: a plain dict maps each method name to the class that runs it."""

from __future__ import annotations

from moebench.methods.cloud import CloudServing  # noqa: E402
from moebench.methods.offload import (
    FullResident,
    HfOffload,
    MixtralOffloading,
    NextLayerPrefetch,
    OnDemand,
    TopK,
)
from moebench.methods.prism import Prism  # noqa: E402 - builds on methods.offload
from moebench.methods.speq import SpeQ  # noqa: E402 - builds on methods.offload

METHODS = {
    "full_resident": FullResident,
    "hf_offload": HfOffload,
    "ondemand": OnDemand,
    "mixtral_offloading": MixtralOffloading,
    "next_layer_prefetch": NextLayerPrefetch,
    "topk": TopK,
    "speq": SpeQ,
    "prism": Prism,
    "cloud": CloudServing,
}
