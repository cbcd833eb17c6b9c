"""Group-wise symmetric INT4 quantization of routed experts: round-to-nearest and GPTQ.

MoE-SpeQ's draft is the target with only its routed experts quantized (symmetric INT4,
group size 128, GPTQ). Weights are [out, in]; each row is split into groups of `group`
input columns sharing one scale. On a CPU the draft computes with the dequantized weights;
the virtual clock charges INT4 bytes plus scales (engine/budget.py). GPTQ follows Frantar
et al. (2023): quantize columns in order and push each column's error onto the columns not
yet quantized, weighted by the inverse Hessian of the layer's calibration inputs.
"""

from __future__ import annotations

import torch

BITS = 4


def qmax(bits: int) -> int:
    """Largest symmetric level: 7 for INT4 (levels -8..7; -8 is never produced by rounding)."""
    return 2 ** (bits - 1) - 1


def group_scales(weight: torch.Tensor, group: int, bits: int = BITS) -> torch.Tensor:
    """[out, in] -> [out, in / group] scales so that max |w| in a group maps to qmax."""
    out, cols = weight.shape
    g = min(group, cols)
    absmax = weight.abs().reshape(out, cols // g, g).amax(dim=-1)
    return (absmax / qmax(bits)).clamp(min=1e-12)


def _fake_quant(w: torch.Tensor, scale: torch.Tensor, bits: int = BITS) -> torch.Tensor:
    return torch.clamp(torch.round(w / scale), -qmax(bits) - 1, qmax(bits)) * scale


def quantize_rtn(weight: torch.Tensor, group: int = 128, bits: int = BITS) -> torch.Tensor:
    """Round-to-nearest, returned dequantized (same shape and dtype as `weight`)."""
    out, cols = weight.shape
    g = min(group, cols)
    w = weight.float().reshape(out, cols // g, g)
    scale = group_scales(weight.float(), group, bits).unsqueeze(-1)
    return _fake_quant(w, scale, bits).reshape(out, cols).to(weight.dtype)


def quantize_gptq(
    weight: torch.Tensor,
    inputs: torch.Tensor,
    group: int = 128,
    damp: float = 0.01,
    bits: int = BITS,
) -> torch.Tensor:
    """GPTQ INT4 of one linear layer `weight` [out, in] given calibration `inputs` [N, in];
    returned dequantized. Scales are set per group from the error-updated weights."""
    w = weight.float().clone()
    out, cols = w.shape
    g = min(group, cols)
    if inputs.shape[0] == 0:
        return quantize_rtn(weight, group, bits)
    x = inputs.float()
    hessian = 2 * x.T @ x / x.shape[0]
    dead = torch.diag(hessian) == 0
    hessian[dead, dead] = 1.0
    w[:, dead] = 0.0
    hessian += damp * torch.mean(torch.diag(hessian)) * torch.eye(cols)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(hessian)), upper=True)
    q = torch.zeros_like(w)
    scale = None
    for c in range(cols):
        if c % g == 0:
            scale = (w[:, c : c + g].abs().amax(dim=1) / qmax(bits)).clamp(min=1e-12)
        q[:, c] = _fake_quant(w[:, c], scale, bits)
        err = (w[:, c] - q[:, c]) / hinv[c, c]
        w[:, c + 1 :] -= err.unsqueeze(1) * hinv[c, c + 1 :].unsqueeze(0)
    return q.to(weight.dtype)
