"""Where the repository, its configs and the sibling ../shared/data live (one place)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = REPO_ROOT / "conf"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MIXTRAL_TRACE = (
    SHARED_DATA
    / "moe_routing_traces"
    / "mixtral-8x7b-instruct-v0.1-fp8"
    / "humaneval_2_routing.jsonl"
)
