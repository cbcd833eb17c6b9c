"""MoE-SpeQ: an INT4 copy of the target drafts tokens, its routers predict the experts the
target will need, the FP16 experts are prefetched while drafting, the target verifies."""
