"""The package's import drawing: no circle, and no import from a lower layer to a higher one.

The layers, lowest first (docs/development.md, "Package layout"). A module may import its own layer and the
ones below; ``if TYPE_CHECKING:`` imports (annotations only) are not imports at run time and are left out.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "reid_uda_lib"

LAYERS = [
    {"utils", "models", "losses", "ram"},
    {"cluster", "evaluation"},
    {"config"},                 # config/ (schema, presets)
    {"data"},
    {"viz"},
    {"runtime"},
    {"core"},
    {"methods"},
    {"train"},
    {"analysis"},
    {"experiments"},
    {"cli", "__main__", ""},
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def imports() -> dict[str, set[str]]:
    """``{module: {imported package modules}}`` (names relative to the package, "" for the package)."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text())
        skip = {id(x) for n in ast.walk(tree) if isinstance(n, ast.If) and getattr(n.test, "id", "") ==
                "TYPE_CHECKING" for b in n.body for x in ast.walk(b)}
        here = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        here = [h for h in here if h]
        for node in ast.walk(tree):
            if id(node) in skip or not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("reid_uda_lib"):
                target = node.module[len("reid_uda_lib") + 1:]
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                edges[mod].add(sub if sub in mods else target)
        edges[mod].discard(mod)
    return edges


def layer(mod: str) -> int:
    top = mod.split(".")[0]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"reid_uda_lib.{mod} is in no layer of tests/test_layers.py: add its folder to LAYERS")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def upward(edges: dict[str, set[str]]) -> list[str]:
    # a package's __init__ re-exports its own modules; the package itself ("") sits on top
    return [f"{m} -> {t}" for m, ts in edges.items() for t in ts if layer(t) > layer(m)]


def test_no_import_circle():
    assert cycles(imports()) == []


def test_no_import_from_a_lower_layer_to_a_higher_one():
    assert upward(imports()) == []


def test_config_imports_nothing_from_the_package():
    edges = imports()
    config = [m for m in edges if m.split(".")[0] == "config"]
    assert {"config", "config.schema", "config.presets"} <= set(config)
    assert {t for m in config for t in edges[m] if t.split(".")[0] != "config"} == set()


def test_the_checks_catch_a_circle_and_an_upward_import():
    """The two checks above fail on the mistakes they name (a mutated drawing)."""
    edges = imports()
    mutated = {m: set(ts) for m, ts in edges.items()}
    mutated["config"].add("methods.validate")                  # the circle this project once had
    assert any("config" in c for c in cycles(mutated))
    assert "config -> methods.validate" in upward(mutated)
    with pytest.raises(AssertionError, match="in no layer"):
        layer("newfolder.module")
