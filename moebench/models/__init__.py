"""Models: per-family views of HF MoE layers, random tiny models, proxies, real checkpoints."""
