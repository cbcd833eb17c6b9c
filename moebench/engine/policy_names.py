"""Every expert-cache policy's name, in one light module: the method options (which the
command line loads before torch) and the policy registry (engine/policies.py) both read it.

`ONLINE` policies see only the past and run live; `NEEDS_TRACE` ones need the whole trace
(a replay); `lookahead` is MoE-SpeQ's eviction by its drafted routing.
"""

ONLINE = (
    "lru",
    "lfu",
    "lfuda",
    "s3fifo",
    "arc",
    "lirs",
    "lfru",
    "least_stale",
    "transition",
    "learned",
)
NEEDS_TRACE = ("static", "belady")
ALL = ONLINE + NEEDS_TRACE + ("lookahead",)
