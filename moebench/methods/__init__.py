"""Inference methods: a plain dict maps each method name to the class that runs it."""

from __future__ import annotations

from moebench.methods.full_resident import FullResident

METHODS = {
    "full_resident": FullResident,
}
