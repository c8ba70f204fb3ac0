"""The package's import graph has no cycles and every import points to the same or a lower layer.

The graph is read with ``ast`` from the source (nothing is imported): module-level and function-level
imports alike (a lazy import is still a dependency), ``from x import y`` resolved to module ``x.y`` when
that is a module of the package, else to ``x``. Importing ``a.b.c`` is an edge to ``a.b.c`` only, not to
the packages ``a`` and ``a.b`` it runs first (their ``__init__`` re-exports would make every package a
cycle). Dynamic imports (``importlib.import_module``) are not seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import xfm_pipeline

PACKAGE = "xfm_pipeline"
PACKAGE_DIR = Path(xfm_pipeline.__file__).parent

# Layer of each top-level package or module of xfm_pipeline: an import may go to the same or a lower
# number only. One line per package, top to bottom.
LAYERS = {
    "__main__": 7,  # `python -m xfm_pipeline`: Kedro's CLI
    "pipeline_registry": 7,  # Kedro: every pipeline by name
    "settings": 7,  # Kedro: hooks, config loader
    "hooks": 7,  # Kedro hooks: MLflow runs and parameters
    "pipelines": 7,  # Kedro wiring and nodes
    "dvc_stages": 7,  # `python -m xfm_pipeline.dvc_stages`: dvc.yaml generated from the task registry
    "serving": 6,  # MLflow pyfunc model and registry around predict, `mlflow models serve`
    "reporting": 6,  # report building blocks (tables, plots, drawings), used by pipelines
    "datasets": 6,  # Kedro datasets of this project, named in the catalog
    "jobs": 5,  # model + data + objective + loop, in-process or on every torchrun rank
    "predict": 5,  # a trained task checkpoint called on raw inputs (Predictor)
    "tracking": 5,  # MLflow step logger and run keys, handed to the loop by jobs and hooks
    "tasks": 4,  # one module per downstream task: head, loss, predict, evaluate
    "objectives": 3,  # pretraining losses as functions of tensors
    "training": 3,  # the loop, optimizer groups, checkpoints, torchrun launch (knows nothing of X-FM)
    "model": 2,  # pure PyTorch encoders, heads, checkpoint I/O
    "data": 2,  # format readers, shapes world, transforms, masking, validation suites
    "metrics": 1,  # pure functions on lists and arrays
    "config": 0,  # strict dict -> dataclass, usable from any layer
    "offline": 0,  # the offline, no-telemetry environment variables, usable from any layer
    "": 0,  # xfm_pipeline/__init__.py: the version string
}


def module_name(path: Path, root: Path, package: str) -> str:
    """``root/a/b.py`` -> ``package.a.b``; ``root/a/__init__.py`` -> ``package.a``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: set[str]) -> list[str]:
    """Modules of ``modules`` that one import statement of ``module`` depends on."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:  # relative: from the module's own package, one level up per extra dot
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, node.module] if node.module else anchor)
        else:
            base = node.module or ""
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    found = []
    for name in names:
        while name and name not in modules:  # `import a.b.c` of a non-module attribute path: its module
            name = name.rpartition(".")[0]
        if name:
            found.append(name)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` for every ``.py`` file under ``root``."""
    files = {module_name(path, root, package): path for path in sorted(root.rglob("*.py"))}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps.update(_imported(node, module, path.name == "__init__.py", modules))
        deps.discard(module)
        graph[module] = deps
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle path ``[a, b, ..., a]`` per strongly connected component that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, set(component)) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first inside the component)."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    path = [node]  # back from node to start through the parents
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if nxt not in parents:
                    parents[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def layer_of(module: str, package: str = PACKAGE) -> str:
    """The ``LAYERS`` key of a module: its first name below the package (``""`` for the package)."""
    return module[len(package) + 1 :].split(".")[0] if module != package else ""


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int], package: str = PACKAGE) -> list[str]:
    """``"a -> b (layer i -> j)"`` for every import into a higher layer."""
    found = []
    for module, deps in sorted(graph.items()):
        for dep in sorted(deps):
            src, dst = layers[layer_of(module, package)], layers[layer_of(dep, package)]
            if dst > src:
                found.append(f"{module} -> {dep} (layer {src} -> {dst})")
    return found


# ------------------------------------------------------------------ the helpers, on a hand-made package


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_graph_resolves_absolute_relative_and_function_level_imports(tmp_path):
    root = _write(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "from pkg.low.a import f\n",
            "low/a.py": "import os\ndef f():\n    from pkg.low import b\n    return b\n",
            "low/b.py": "from . import c\nfrom .c import g\n",
            "low/c.py": "def g():\n    import pkg.top\n",
            "top/__init__.py": "",
            "top/x.py": "from pkg.low import f\nfrom ..low.b import *\nimport pkg.low.a.f_attr\n",
        },
    )
    graph = import_graph(root, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.low": {"pkg.low.a"},
        "pkg.low.a": {"pkg.low.b"},  # function-level `from pkg.low import b`: the module b
        "pkg.low.b": {"pkg.low.c"},  # `from . import c` and `from .c import g`
        "pkg.low.c": {"pkg.top"},  # function-level import of a package
        "pkg.top": set(),
        "pkg.top.x": {"pkg.low", "pkg.low.b", "pkg.low.a"},  # `f` is a name of pkg.low, not a module
    }
    assert find_cycles(graph) == []
    assert upward_imports(graph, {"": 0, "low": 0, "top": 1}, "pkg") == ["pkg.low.c -> pkg.top (layer 0 -> 1)"]


def test_find_cycles_reports_each_cycle_path():
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": set(), "e": {"f"}, "f": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "f", "e"]]


def test_function_level_import_cycle_is_found(tmp_path):
    root = _write(
        tmp_path,
        {"__init__.py": "", "a.py": "from pkg.b import g\n", "b.py": "def g():\n    from pkg import a\n    return a\n"},
    )
    assert find_cycles(import_graph(root, "pkg")) == [["pkg.a", "pkg.b", "pkg.a"]]


# ------------------------------------------------------------------ the package itself

GRAPH = import_graph(PACKAGE_DIR, PACKAGE)


def test_every_top_level_package_has_a_layer():
    assert {layer_of(module) for module in GRAPH} <= set(LAYERS), "add the new package to LAYERS"


def test_no_import_cycles():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_imports_point_to_the_same_or_a_lower_layer():
    upward = upward_imports(GRAPH, LAYERS)
    assert not upward, "imports into a higher layer:\n" + "\n".join(upward)
