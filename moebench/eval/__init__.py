"""Accuracy through lm-eval: offline copies of standard tasks and an adapter for any
moebench model and method."""
