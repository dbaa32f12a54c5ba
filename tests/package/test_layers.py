"""The package's layers: imports point down only (adapters, core, executors, backends),
with no import cycle anywhere, deferred imports inside functions included."""

import ast
import pathlib

import fastxent

PACKAGE = pathlib.Path(fastxent.__file__).resolve().parent


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            yield ".".join(parts[:-1]), path, True
        else:
            yield ".".join(parts), path, False


def _graph():
    """Module -> the package modules it imports anywhere in its source."""
    modules = {name: (path, is_package) for name, path, is_package in _modules()}
    graph = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def _cycle(graph):
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_the_import_graph_is_found():
    graph = _graph()
    assert "fastxent._core.plan" in graph["fastxent.nn"]
    assert "fastxent._dask.loss" in graph["fastxent._core.plan"]   # a deferred import, counted


def test_no_import_cycle():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()))


def test_backends_and_executors_never_import_the_adapters():
    adapters = {"fastxent.nn", "fastxent.losses", "fastxent.linear", "fastxent.sklearn",
                "fastxent.compat", "fastxent.compat.v1", "fastxent.compat.v1.nn"}
    graph = _graph()
    for lower in graph:
        if lower.startswith(("fastxent._core", "fastxent._dask", "fastxent._backends",
                             "fastxent._linear")):
            assert not graph[lower] & adapters, (lower, graph[lower] & adapters)


def test_the_package_root_holds_the_public_modules_only():
    """Everything private lives in a folder named for its layer."""
    private = sorted(path.name for path in PACKAGE.glob("_*.py")
                     if path.name not in ("__init__.py", "__main__.py"))
    assert not private, private


def test_the_backends_import_no_layer_above_them():
    graph = _graph()
    for name, edges in graph.items():
        if name.startswith("fastxent._backends"):
            above = {e for e in edges if not e.startswith("fastxent._backends")}
            assert not above, (name, above)
