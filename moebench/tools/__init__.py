"""Command-line tools: each module is a `python -m moebench.tools.NAME` script that measures
something (a CPU profile, the virtual clock against the wall clock, the engine's own cost,
the proxy cards) and writes a record or a report. The top layer: they may import anything."""
