"""Arrows point down only: every module's imports, read with ``ast``, against the layers.

- store never imports domain, gateway, api or pipeline (the domain's use cases
  sit on the store's interfaces, not the other way round);
- domain never imports gateway, api or pipeline;
- api never imports gateway (both render through ``sandcat.view``);
- none of these layers imports the composition root (``app``, ``wiring``, ...),
  which imports them all;
- protocol imports nothing of sandcat's outside protocol (it is sans-IO);
- no import cycle inside gateway/ (the connection runs the handlers, which
  take a ``gateway.peer.Peer``).

Imports under ``if TYPE_CHECKING:`` and inside functions count too: a type
that points up is still an arrow up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sandcat

ROOT = Path(sandcat.__file__).parent
#: The top-level modules that open and wire everything (the composition root and
#: the commands that run it).
ROOT_MODULES = {
    "__main__",
    "admin_cli",
    "app",
    "cli",
    "housekeeping",
    "infrastructure",
    "roles",
    "server",
    "services",
    "supervisor",
    "wiring",
}
FORBIDDEN = {
    "store": {"domain", "gateway", "api", "pipeline", *ROOT_MODULES},
    "domain": {"gateway", "api", "pipeline", *ROOT_MODULES},
    "api": {"gateway", *ROOT_MODULES},
    "pipeline": ROOT_MODULES,
    "gateway": ROOT_MODULES,
}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["sandcat", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The sandcat modules ``name`` imports (``from pkg import mod`` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                found.add(full if full in MODULES else source)
    return {target for target in found if target.split(".")[0] == "sandcat"}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks a rule, as ``importer -> imported``."""
    broken = []
    for module, targets in sorted(graph.items()):
        layer = _layer(module)
        for target in sorted(targets):
            if _layer(target) in FORBIDDEN.get(layer, set()) or (
                layer == "protocol" and _layer(target) != "protocol"
            ):
                broken.append(f"{module} -> {target}")
    return broken


def cycles(graph: dict[str, set[str]], layer: str) -> list[list[str]]:
    """The import cycles among ``layer``'s modules (Tarjan's strongly connected components)."""
    inner = {
        module: {target for target in targets if _layer(target) == layer}
        for module, targets in graph.items()
        if _layer(module) == layer
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(inner.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            component.append(node)
            if len(component) > 1 or node in inner.get(node, ()):
                found.append(sorted(component))

    for node in sorted(inner):
        if node not in index:
            visit(node)
    return found


def test_the_walker_sees_the_package() -> None:
    assert "sandcat.protocol" in GRAPH
    assert "sandcat.store.messages" in GRAPH["sandcat.pipeline.router"]
    # Relative and "from package import module" imports resolve to the module.
    assert "sandcat.protocol._frames" in GRAPH["sandcat.protocol"]


def test_the_rules_catch_what_they_name() -> None:
    graph = {
        "sandcat.store.x": {"sandcat.gateway.hub"},
        "sandcat.store.v": {"sandcat.domain.cache", "sandcat.store.x", "sandcat.clock"},
        "sandcat.domain.y": {"sandcat.pipeline", "sandcat.store.x"},
        "sandcat.domain.u": {"sandcat.wiring"},
        "sandcat.pipeline.t": {"sandcat.app", "sandcat.store.x"},
        "sandcat.api.z": {"sandcat.gateway.timeline", "sandcat.view"},
        "sandcat.protocol.w": {"sandcat.ids", "sandcat.protocol._codec"},
        "sandcat.gateway.a": {"sandcat.gateway.b"},
        "sandcat.gateway.b": {"sandcat.gateway.a", "sandcat.store.x"},
        "sandcat.gateway.c": {"sandcat.gateway.c"},
    }
    assert upward(graph) == [
        "sandcat.api.z -> sandcat.gateway.timeline",
        "sandcat.domain.u -> sandcat.wiring",
        "sandcat.domain.y -> sandcat.pipeline",
        "sandcat.pipeline.t -> sandcat.app",
        "sandcat.protocol.w -> sandcat.ids",
        "sandcat.store.v -> sandcat.domain.cache",
        "sandcat.store.x -> sandcat.gateway.hub",
    ]
    assert cycles(graph, "gateway") == [
        ["sandcat.gateway.a", "sandcat.gateway.b"],
        ["sandcat.gateway.c"],
    ]


def test_no_module_imports_upward() -> None:
    assert upward(GRAPH) == []


def test_the_gateway_has_no_import_cycle() -> None:
    assert cycles(GRAPH, "gateway") == []
