"""moebench: a benchmark and reproducibility harness for Mixture-of-Experts inference."""

__version__ = "0.1.0"
SCHEMA_VERSION = 1
