"""labkit's imports run one way. The order, written down once (lower layers never import higher ones):

    errors, paths, stats, progress  →  env  →  data, models, bench, results  →  train  →  techniques
        →  exercises, ui  →  doctor, report, coursemap  →  cli

Modules of one layer may import each other, never in a cycle. Imports sit at the top of a module;
only `cli` imports inside its functions, so that `labkit --help` starts without torch.
"""

import ast
from pathlib import Path

import labkit

PACKAGE = Path(labkit.__file__).resolve().parent
LAYERS = [
    {"labkit", "labkit.errors", "labkit.paths", "labkit.stats", "labkit.progress"},
    {"labkit.env"},
    {"labkit.data", "labkit.models", "labkit.bench", "labkit.results"},
    {"labkit.train"},
    {"labkit.techniques"},
    {"labkit.exercises", "labkit.ui"},
    {"labkit.doctor", "labkit.report", "labkit.coursemap", "labkit.course"},
    {"labkit.cli", "labkit.__main__"},
]
LAZY_OK = {"labkit.cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(name: str) -> int:
    """The layer of a module: its own entry, or the package it sits in (labkit.ui.amp is in labkit.ui)."""
    for i, group in enumerate(LAYERS):
        if name in group or any(name.startswith(g + ".") for g in group if g != "labkit"):
            return i
    raise AssertionError(f"{name} has no layer in tests/test_architecture.py: add it where it belongs")


def imports(name: str) -> list[tuple[str, bool]]:
    """(imported labkit module, whether the import sits inside a function) for every import in `name`."""
    tree = ast.parse(MODULES[name].read_text())
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inside = {id(n) for f in funcs for n in ast.walk(f) if n is not f}
    package = name if MODULES[name].name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in targets:
            if target.startswith("labkit") and target in MODULES and target != name:
                found.append((target, id(node) in inside))
    return found


GRAPH = {name: {t for t, _ in imports(name)} for name in MODULES}


def test_every_module_has_a_layer_and_imports_only_downwards():
    upward = [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
              for a, targets in GRAPH.items() for b in targets if layer(b) > layer(a)]
    assert not upward, "\n".join(upward)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in `graph` (module → modules it imports), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_imports_sit_at_the_top_of_modules():
    lazy = [f"{name} imports {target} inside a function"
            for name in MODULES if name not in LAZY_OK for target, in_function in imports(name) if in_function]
    assert not lazy, "\n".join(lazy)


def test_the_checks_see_what_they_check():
    """The graph is read from the code (no vacuous pass), and the cycle finder finds a cycle."""
    assert "labkit.env" in GRAPH["labkit.data"] and "labkit.train" in GRAPH["labkit.techniques.quantization"]
    assert layer("labkit.ui.quantization") > layer("labkit.techniques.quantization")
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
