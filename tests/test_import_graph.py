"""The import graph of ``src/see3d``: arrows point down the layer table, and no module imports itself
back through a chain of others.

Every ``import`` counts, also those inside functions (a lazy import is still a dependency; laziness only
hides a cycle until the wrong module is imported first). The table is the code's architecture: a new
top-level module or package must be placed in it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import see3d

ROOT = Path(see3d.__file__).resolve().parent

# A module may import its own package and anything of a strictly lower layer; never a peer package of the
# same layer, never upward.
LAYERS: dict[str, int] = {
    # foundations: no see3d imports but each other's
    "__init__": 0,
    "errors": 0,
    "log": 0,
    "labels": 0,
    # the shared data types (Cameras, Views) and the files that carry them; camera conventions
    "io": 1,
    # the one torch device / dtype / random-draw policy (torch and errors only)
    "device": 1,
    # built on io only
    "config": 2,
    "geometry": 2,
    "datasets": 2,
    # the stations' building blocks
    "depth": 3,
    "synth": 3,
    "curation": 3,
    "models": 3,
    "conditioning": 3,
    "metrics": 3,
    "perceptual": 3,
    # generation and reconstruction
    "pipelines": 4,
    "splat": 4,
    # what uses them
    "viewer": 5,
    "train": 5,
    "eval": 5,
    # the end-to-end demo (a Python function), the app (a page over the same steps), then the CLI verbs over everything
    "demo": 6,
    "app": 7,
    "commands": 8,
    "cli": 9,
}


def module_name(path: Path) -> str:
    parts = ("see3d", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def imports_of(path: Path) -> list[tuple[str, int]]:
    """(imported see3d module, line) for every import statement of the file, nested ones included."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "see3d"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "see3d":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")]
            out += [(s, node.lineno) for s in subs] or [(target, node.lineno)]
            if subs and len(subs) < len(node.names):  # names taken from the package itself, too
                out.append((target, node.lineno))
    return out


def graph() -> dict[str, list[tuple[str, int]]]:
    return {module_name(p): imports_of(p) for p in sorted(ROOT.rglob("*.py"))}


def component(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_top_level_module_is_in_the_layer_table():
    found = {component(m) for m in graph()}
    assert not found - LAYERS.keys(), f"place these in LAYERS: {sorted(found - LAYERS.keys())}"
    assert not LAYERS.keys() - found, f"LAYERS names modules that do not exist: {sorted(LAYERS.keys() - found)}"


def test_no_import_points_up_or_sideways():
    bad = []
    for mod, imports in graph().items():
        src = component(mod)
        for target, line in imports:
            dst = component(target)
            if dst != src and LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{mod}:{line} imports {target} ({src} layer {LAYERS[src]} -> {dst} layer {LAYERS[dst]})")
    assert not bad, "imports against the layer table:\n" + "\n".join(bad)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m) :] + [m]
            if m not in state and (found := visit(m)):
                return found
        path.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_cycle_between_modules():
    edges = {mod: {t for t, _ in imports if t != mod} for mod, imports in graph().items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_catch_an_upward_import_and_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert LAYERS[component("see3d.splat.optimize")] < LAYERS[component("see3d.eval.runner")]
    assert LAYERS[component("see3d.io.cameras")] < LAYERS[component("see3d.geometry.warp")]
