"""Every import runs downward (ARCHITECTURE.md's layer table), and no modules import each
other in a circle. Function-level imports count: they are still dependencies."""

import ast
from pathlib import Path

from moebench.paths import REPO_ROOT

# ARCHITECTURE.md, "Folders and what each may import": a module imports only its own layer
# or lower ones. Keys are packages or modules; the longest matching prefix wins.
LAYERS = {
    "moebench": 0,
    "moebench.errors": 0,
    "moebench.paths": 0,
    "moebench.typed": 0,
    "moebench.determinism": 0,
    "moebench.models.family": 0,
    "moebench.config": 1,
    "moebench.models": 2,
    "moebench.engine": 3,
    "moebench.bench": 4,
    "moebench.speq": 5,
    "moebench.prism": 5,
    "moebench.methods": 6,
    "moebench.eval": 6,
    "moebench.schema": 7,
    "moebench.records": 7,
    "moebench.recordings": 7,
    "moebench.sinks": 7,
    "moebench.runner": 8,
    "moebench.cli": 9,
    "moebench.__main__": 9,
    "moebench.regress": 9,
    "moebench.compare_records": 9,
    "moebench.report": 9,
    "moebench.tools": 9,
}


def layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    raise AssertionError(f"{module} has no layer in LAYERS (add it, and to ARCHITECTURE.md)")


def imports() -> dict[str, set[str]]:
    """module -> the moebench modules it imports (anywhere in its body)."""
    out = {}
    for path in sorted((REPO_ROOT / "moebench").rglob("*.py")):
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(
            ".__init__"
        )
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("moebench")
            ):
                found |= {
                    f"{node.module}.{a.name}"
                    if _is_module(f"{node.module}.{a.name}")
                    else node.module
                    for a in node.names
                }
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("moebench")}
        out[module] = found - {module}
    return out


def _is_module(name: str) -> bool:
    base = REPO_ROOT / Path(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def upward(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
        for a, targets in graph.items()
        for b in sorted(targets)
        if layer(b) > layer(a)
    ]


def circles(graph: dict[str, set[str]]) -> list[str]:
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_every_import_runs_downward():
    problems = upward(imports())
    assert not problems, "\n".join(problems)


def test_no_import_circle():
    problems = circles(imports())
    assert not problems, "\n".join(problems)


def test_the_checks_see_an_upward_import_and_a_circle():
    assert upward({"moebench.engine.offload": {"moebench.methods.speq"}})
    assert not upward({"moebench.methods.speq": {"moebench.engine.offload"}})
    assert circles(
        {
            "moebench.models.build": {"moebench.models.train"},
            "moebench.models.train": {"moebench.models.build"},
        }
    )


def test_no_family_name_is_tested_outside_models():
    """Family differences are asked of models/family.py, never tested by name elsewhere."""
    names = ("mixtral", "phimoe", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2")
    hits = []
    for path in sorted((REPO_ROOT / "moebench").rglob("*.py")):
        if "models" in path.relative_to(REPO_ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                isinstance(c, ast.Constant) and c.value in names
                for c in [node.left, *node.comparators]
            ):
                hits.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
            if isinstance(node, ast.Compare) and any(
                isinstance(c, ast.Tuple)
                and any(isinstance(e, ast.Constant) and e.value in names for e in c.elts)
                for c in node.comparators
            ):
                hits.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not hits, hits
