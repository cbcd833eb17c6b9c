"""moebench: a benchmark and reproducibility harness for Mixture-of-Experts inference."""

from moebench.determinism import pin_process_numerics

# Before anything imports torch: the kernels that decide a float's bits are chosen then.
pin_process_numerics()

__version__ = "0.1.0"
