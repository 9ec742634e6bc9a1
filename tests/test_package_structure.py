"""The import graph of the library and of the experiment tooling beside it: no cycles, no module imports
another module's underscore names, and the library imports nothing from the tooling.

A cycle makes import order matter (a module half-initialised when its partner reads it); an imported
underscore name is a private detail another module came to depend on. Both are checked on the source,
without importing anything.
"""
import ast
import os
from typing import Dict, List, Set

from allennlp_structkd.paths import REPO

LIBRARY = "allennlp_structkd"
TOOLING = "experiments"
NAMES = (LIBRARY, TOOLING)


def _ours(module: str, names=NAMES) -> bool:
    return any(module == name or module.startswith(name + ".") for name in names)


def _modules() -> Dict[str, ast.Module]:
    modules = {}
    for folder, _, files in (entry for name in NAMES for entry in os.walk(os.path.join(REPO, name))):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(folder, file)
                dotted = os.path.relpath(path[:-3], REPO).replace(os.sep, ".")
                dotted = dotted[: -len(".__init__")] if dotted.endswith(".__init__") else dotted
                with open(path, encoding="utf-8") as handle:
                    modules[dotted] = ast.parse(handle.read(), filename=path)
    return modules


def _imports(tree: ast.Module, modules: Dict[str, ast.Module]) -> Set[str]:
    """The project's modules a module imports, at any depth of its body (imports inside functions count:
    they only postpone a cycle)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and _ours(node.module):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in modules)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if _ours(alias.name))
    return {name for name in found if name in modules}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan), iteratively."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _graph() -> Dict[str, Set[str]]:
    modules = _modules()
    # a module importing its own parent package is how a package's modules reach their siblings
    # (``from experiments import layout``); the edge to the parent itself is not a cycle
    return {name: {other for other in _imports(tree, modules) if not name.startswith(other + ".")}
            for name, tree in modules.items()}


def test_the_import_graph_has_no_cycles():
    graph = _graph()
    assert sum(_ours(name, (LIBRARY,)) for name in graph) > 50  # the walk found both
    assert sum(_ours(name, (TOOLING,)) for name in graph) > 10
    assert _cycles(graph) == []


def test_the_library_imports_nothing_from_the_tooling_beside_it():
    """The tooling is not installed with the package: an import of it would fail outside a checkout."""
    graph = _graph()
    assert sorted(f"{name} imports {other}" for name, others in graph.items() if _ours(name, (LIBRARY,))
                  for other in others if _ours(other, (TOOLING,))) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_another_modules_underscore_names():
    private = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and _ours(node.module):
                private.extend(f"{name}:{node.lineno} imports {node.module}.{alias.name}"
                               for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__"))
    assert private == []


# The library's layers, lowest first: a module imports from its own layer or those below, never above. Shared
# utilities (paths, settings, the AllenNLP shims) sit under everything; the commands and the demo over everything.
LAYERS = [
    {"paths", "keys", "settings", "version", "allennlp_private", "config_defaults", "archives", "commands"},
    {"structures"},
    {"kd"},
    {"data"},
    {"modules", "dataset_readers"},
    {"training"},
    {"models"},
    {"predictors", "evaluation"},
    {"__init__", "annotate", "train_teachers", "ray_annotation", "encode_features", "export", "demo", "command_line"},
]


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    found = [k for k, layer in enumerate(LAYERS) if top in layer]
    assert found, f"{module}: its package {top!r} has no layer in LAYERS"
    return found[0]


def test_no_import_runs_up_the_library_layers():
    graph = _graph()
    upward = sorted(f"{name} imports {other}" for name, others in graph.items() if _ours(name, (LIBRARY,))
                    for other in others if _ours(other, (LIBRARY,)) and _layer(other) > _layer(name))
    assert upward == []


PUBLIC_UNDERSCORE = {"_", "_exit", "_getframe"}  # spaCy's extension namespace (doc._), os._exit, sys._getframe


def _private_reads(tree: ast.Module) -> List[str]:
    """Where a module reads an underscore attribute of an object that is not its own (``self``, ``cls``, ``super()``):
    by attribute, or by name through getattr/hasattr/setattr."""
    found = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            own = (isinstance(owner, ast.Name) and owner.id in ("self", "cls")) or (
                isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super")
            name = None if own else node.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr", "setattr") \
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str) \
                and node.args[1].value.startswith("_") and not node.args[1].value.startswith("__"):
            name = node.args[1].value
        if name is not None and name not in PUBLIC_UNDERSCORE:
            found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_only_one_module_reads_allennlps_private_attributes():
    """Another object's private attribute (AllenNLP keeps some state only there) is read in allennlp_private alone."""
    modules = _modules()
    reads = {name: _private_reads(tree) for name, tree in modules.items()
             if _ours(name, (LIBRARY,)) and name != f"{LIBRARY}.allennlp_private"}
    assert {name: found for name, found in reads.items() if found} == {}
    assert _private_reads(modules[f"{LIBRARY}.allennlp_private"])  # the check sees reads where they are


def test_the_private_read_finder_finds_one():
    tree = ast.parse("def f(vocab, self):\n    self._own = vocab._oov_token\n    return getattr(vocab, '_padding_token')\n")
    assert [line.split(":")[0] for line in _private_reads(tree)] == ["line 2", "line 3"]
