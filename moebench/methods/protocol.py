"""What the runner asks of a method, by kind of run (RunConfig.kind).

A decode method generates tokens for each prompt and reports per-step seconds; a replay
drives the same engine from a recorded routing trace; an accuracy run hands the method to
lm-eval, which runs the model with the method's engine installed; a serving method runs a
simulation. Every method then gives its metrics and the details a record keeps. The
registry (methods/registry.py) names the kinds each method supports, and a unit test checks
every registered class against these protocols.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class RecordedMethod(Protocol):
    """What every method gives its record."""

    clock_label: str  # which clock timed it: virtual | wall | cuda

    def details(self) -> dict[str, Any]:
        """What the run chose (memory plan, options resolved against the model, ...)."""
        ...


@runtime_checkable
class DecodeMethod(RecordedMethod, Protocol):
    """Generates (decode and accuracy runs) or replays a routing trace (replay runs)."""

    steps: list  # every forward's routing, for trace recording
    engine: Any  # the OffloadEngine the model's experts run through

    def generate(self, prompt_ids, new_tokens: int, chooser) -> tuple[list[int], list[float]]:
        """The new tokens, and each emitted token's seconds (prefill first)."""
        ...

    def replay(self, trace) -> list[float]:
        """Each replayed step's seconds, for a routing trace instead of the model."""
        ...

    def metrics(self) -> dict[str, float]: ...

    def timeline(self) -> dict:
        """Both streams as a Chrome trace."""
        ...


@runtime_checkable
class ServingMethod(RecordedMethod, Protocol):
    """A serving simulation: no model runs."""

    def serve(self) -> dict[str, float]:
        """The simulation's metrics."""
        ...


PROTOCOLS = {
    "decode": DecodeMethod,
    "replay": DecodeMethod,
    "accuracy": DecodeMethod,
    "serving": ServingMethod,
}
