"""LG with fine-tuning (paper section 4.3.2): train only the routers of a carved model.

The carved model starts from the linear gate (each parent's router row repeated N times);
every other weight is frozen. The number of active sub-experts is annealed linearly from k1 to
k2 over the run (k = round(k1 + (k2 - k1) step / steps), the authors' schedule), the loss is
next-token cross-entropy on the proxy's own training text (standing in for SlimPajama), and
the routed sub-experts are mixed with their softmax weights exactly as at inference.

Sized for a CPU: a few hundred Adam steps at a learning rate far above the paper's 1e-5 (which
was for 200K sequences of 2,048 tokens); both are recorded in the run's options. Gradients are
clipped to norm 1.0 (the authors' max_grad_norm). A step whose router gradients are not finite
is skipped and counted: on the DeepSeek and Qwen3 proxies 3 of 200 steps gave NaN router
gradients (on DeepSeek traced to MLA attention's backward, first at step 53), and one such
step would otherwise poison every router.
"""

from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from moebench.models.families import FAMILIES
from moebench.models.loaded import LoadedModel
from moebench.models.tensor_cache import cache_path, tokens_sha256


def k_schedule(step: int, steps: int, k1: int, k2: int) -> int:
    return round(k1 + (k2 - k1) * step / max(steps - 1, 1))


def router_names(carved: LoadedModel) -> list[str]:
    attr = FAMILIES[carved.family].router_attr
    return [f"model.layers.{v.index}.mlp.{attr}.weight" for v in carved.layers]


MAX_GRAD_NORM = 1.0


def finetune_routers(
    carved: LoadedModel,
    windows: list[torch.Tensor],
    steps: int,
    lr: float,
    k1: int,
    k2: int,
    batch: int = 4,
    seed: int = 0,
) -> tuple[list[float], int]:
    """Train the routers in place; returns the loss per step and how many steps were skipped."""
    model = carved.model
    routers = [v.router.weight for v in carved.layers]
    for p in model.parameters():
        p.requires_grad_(False)
    for w in routers:
        w.requires_grad_(True)
    opt = torch.optim.Adam(routers, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    data = torch.cat(windows)
    losses, skipped = [], 0
    model.train(False)  # no dropout; routers still get gradients
    for step in range(steps):
        k = k_schedule(step, steps, k1, k2)
        for view in carved.layers:
            view.router.top_k = k
        ids = data[torch.randint(0, len(data), (batch,), generator=gen)]
        logits = model(input_ids=ids).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(routers, MAX_GRAD_NORM)
        if torch.isfinite(norm):
            opt.step()
        else:
            skipped += 1
        losses.append(float(loss.detach()))
    for w in routers:
        w.requires_grad_(False)
    return losses, skipped


def cached_finetune(
    carved: LoadedModel, windows, steps: int, lr: float, k1: int, k2: int
) -> tuple[list[float], int]:
    """`finetune_routers`, with the trained routers cached by (carved weights, data, options)."""
    path = cache_path(
        f"{carved.name}-lgft",
        [
            carved.weights_sha256,
            tokens_sha256(windows),
            steps,
            lr,
            k1,
            k2,
            MAX_GRAD_NORM,
            "skip-nonfinite",
        ],
    )
    names = router_names(carved)
    if path.exists():
        saved = load_file(path)
        with torch.no_grad():
            for name, view in zip(names, carved.layers, strict=True):
                view.router.weight.copy_(saved[name])
        return [float(x) for x in saved["losses"].tolist()], int(saved["skipped"])
    losses, skipped = finetune_routers(carved, windows, steps, lr, k1, k2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        n: v.router.weight.detach().contiguous() for n, v in zip(names, carved.layers, strict=True)
    }
    save_file(tensors | {"losses": torch.tensor(losses), "skipped": torch.tensor(skipped)}, path)
    return losses, skipped
