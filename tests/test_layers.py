"""The import graph of Nybble's packages, read with ``ast`` (nothing is imported or run).

The layers point down only (``../shared/ARCHITECTURE.md``)::

    cli  ->  explore  ->  sim  ->  synth  ->  hw  ->  sw          analysis -> sw
                                                             explore -> analysis

and no module sits on an import cycle, function-local imports included.  Run as a script
(``python tests/test_layers.py``) it prints the package edges and every module's imports.
"""
import ast
from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parents[1]

#: package folder -> rank; a module may import only packages of a lower rank (or its own).
#: ``analysis`` sits beside the layers: it may import sw; explore and cli import it.
RANK = {"sw": 0, "hw": 1, "synth": 2, "sim": 3, "analysis": 1, "explore": 4, "cli": 5}
#: the import name of each folder (``cli/`` is the top-level ``nybble`` package)
PACKAGE = {"sw": "nybble.sw", "hw": "nybble.hw", "synth": "nybble.synth", "sim": "nybble.sim",
           "analysis": "nybble.analysis", "explore": "nybble.explore", "cli": "nybble"}
#: edges between packages of equal rank that are allowed (none)
SIDEWAYS = set()


def modules():
    """``{dotted name: path}`` of every module of the tree."""
    out = {}
    for folder, package in PACKAGE.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            out[name] = path
    return out


def _folder(module):
    for folder, package in sorted(PACKAGE.items(), key=lambda kv: -len(kv[1])):
        if module == package or module.startswith(package + "."):
            return folder
    return None


def imports(mods):
    """``{module: {imported Nybble module}}``, function-local imports included."""
    graph = {}
    for name, path in mods.items():
        pkg = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(pkg.split(".")[:len(pkg.split(".")) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                # `from pkg import sub` imports the submodule; other names come from base
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                targets = subs + ([base] if len(subs) < len(node.names) else [])
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rsplit(".", 1)[0] if "." in t else ""
                if t and t != name and _folder(t) is not None:
                    found.add(t)
        graph[name] = found
    return graph


def upward_edges(graph):
    """``(module, imported)`` pairs that point up or sideways across packages."""
    bad = []
    for m, targets in graph.items():
        fm = _folder(m)
        for t in targets:
            ft = _folder(t)
            if ft == fm:
                continue
            if RANK[ft] > RANK[fm] or (RANK[ft] == RANK[fm] and (fm, ft) not in SIDEWAYS):
                bad.append((m, t))
    return sorted(bad)


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_layers_point_down():
    graph = imports(modules())
    assert upward_edges(graph) == []


def test_no_import_cycles():
    graph = imports(modules())
    assert cycles(graph) == []


def test_the_checker_finds_what_it_should():
    """The checker itself: a planted upward edge and a planted cycle are reported."""
    graph = {"nybble.sw.a": {"nybble.hw.b"}, "nybble.hw.b": {"nybble.hw.c"},
             "nybble.hw.c": {"nybble.hw.b"}}
    assert upward_edges(graph) == [("nybble.sw.a", "nybble.hw.b")]
    assert cycles(graph) == [["nybble.hw.b", "nybble.hw.c"]]
    assert "nybble.hw.spec" in imports(modules())["nybble.hw.kinds"]


def test_sw_imports_only_numpy_and_the_standard_library():
    # (and numba, which compiles the golden GEMM's fused kernels: no HDL toolchain either)
    allowed = set(sys.stdlib_module_names) | {"numpy", "numba", "nybble"}
    for name, path in modules().items():
        if _folder(name) != "sw":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = [node.module.split(".")[0]]
            else:
                continue
            assert set(roots) <= allowed, f"{name} imports {roots}"


if __name__ == "__main__":
    g = imports(modules())
    edges = sorted({(_folder(m), _folder(t)) for m, ts in g.items() for t in ts
                    if _folder(m) != _folder(t)})
    print("package edges:", ", ".join(f"{a} -> {b}" for a, b in edges))
    print("upward edges:", upward_edges(g) or "none")
    print("cycles:", cycles(g) or "none")
    if "-v" in sys.argv:
        for m in sorted(g):
            print(f"{m}: {', '.join(sorted(g[m])) or '-'}")
