"""The package's import layering (docs/architecture.md): no upward import, no import between units
of one layer, no import cycle. Every import counts, at module level or inside a function."""

import ast
import os
import re
from typing import Dict, List, Set, Tuple

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "visionzoo")

#: Bottom to top. A unit may import units of lower layers only (and its own modules).
LAYERS: List[Tuple[str, ...]] = [
    ("errors", "constants"),
    ("files",),
    ("runtime", "distributed", "shutdown"),
    ("ops",),
    ("registry",),
    ("models", "checkpoint", "data", "recipes"),
    ("config", "factory"),
    ("engine",),
    ("tasks",),
    ("cli",),
    ("convert",),  # ``python -m visionzoo.convert``: the convert command's module entry
]
RANK: Dict[str, int] = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def _modules() -> Dict[str, str]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for root, _, files in os.walk(SRC):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, f), os.path.dirname(SRC))[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                found[".".join(rel)] = os.path.join(root, f)
    return found


MODULES = _modules()


def _imports(module: str, path: str) -> Set[str]:
    """visionzoo modules that ``module`` imports (``from X import y`` counts as X.y when that is a module)."""
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    out: Set[str] = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        out.update(n for n in names if n == "visionzoo" or n.startswith("visionzoo."))
    out.discard(module)
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in MODULES} - {""}
    assert units <= set(RANK), (
        f"modules outside the layering (add them to LAYERS and docs/architecture.md): {units - set(RANK)}"
    )


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _unit(m)))
def test_no_upward_or_sideways_import(module):
    unit = _unit(module)
    bad = []
    for target in sorted(GRAPH[module]):
        other = _unit(target)
        if other == unit:
            continue
        if other == "":
            bad.append(f"{target} (the package facade)")
        elif RANK[other] >= RANK[unit]:
            bad.append(f"{target} (layer {RANK[other]} >= {RANK[unit]})")
    assert not bad, f"{module} (layer {RANK[unit]}: {unit}) imports {', '.join(bad)}"


def test_no_import_cycle():
    """Between modules, counting the imports inside units too (engine.trainer <-> engine.evaluate was one)."""
    state: Dict[str, int] = {}
    stack: List[str] = []
    cycles = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH.get(m, ())):
            if t not in GRAPH:
                continue
            # importing a package's submodule runs the package's __init__ first; that is not a cycle
            if m.startswith(t + "."):
                continue
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_layering_finds_a_planted_upward_import(tmp_path):
    """The checker itself: a model file importing the engine is reported."""
    path = tmp_path / "planted.py"
    path.write_text("from ..engine import trainer\n")
    assert _imports("visionzoo.models.planted", str(path)) == {"visionzoo.engine.trainer"}


def test_architecture_doc_lists_every_unit():
    doc = open(os.path.join(os.path.dirname(SRC), "..", "docs", "architecture.md"), encoding="utf-8").read()
    missing = [u for u in RANK if not re.search(rf"\b{u}\b", doc)]
    assert not missing, f"docs/architecture.md does not describe: {missing}"
