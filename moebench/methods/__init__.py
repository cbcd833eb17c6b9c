"""Inference methods. methods/registry.py names them; each module here builds one family of
them on the offload engine (offload.py: the baselines, speq.py, prism.py) or on the serving
simulation (cloud.py). This package file imports nothing, so the registry stays light."""
