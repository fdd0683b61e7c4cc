"""The package's shape: no import circle (imports inside functions counted), the backend a leaf,
no module over 400 lines, and each concept spelled in one place."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "augcache"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The package modules a module imports anywhere in its body (functions included)."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            taken = [f"{base}.{alias.name}" for alias in node.names]
            # `from augcache import backend` imports a module; `from augcache import __version__` (or
            # `import augcache`) the package itself, whose __init__ counts like any module
            names = taken + ([base] if base != "augcache" or any(name not in known for name in taken) else [])
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    found.discard(module_name(path))
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) for name, path in found.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_backend_is_a_leaf():
    graph = import_graph()
    assert graph["augcache.backend"] == set()


def test_no_module_over_400_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_schema_lists_the_pooling_choices():
    import yaml

    from augcache import pooling

    schema = yaml.safe_load((PACKAGE.parent / "workflow/schemas/config.schema.yaml").read_text())
    choices = schema["properties"]["conv_base"]["properties"]["pooling"]["enum"]
    assert choices == list(pooling.CHOICES)
    assert set(pooling.MAP_POOLING) | set(pooling.TOKEN_POOLING) | {"none"} == set(choices)


def test_every_mode_has_its_place_side_by_side():
    """A new mode is in the side-by-side table unless it only checks another."""
    from augcache.modes import MODES, SIDE_BY_SIDE

    assert [m.name for m in SIDE_BY_SIDE] == ["noaug", "featureaug", "cached", "hybrid", "onthefly"]
    assert {m.name for m in MODES.values() if m.checks is None} == {m.name for m in SIDE_BY_SIDE}
    assert len({m.side_by_side for m in SIDE_BY_SIDE}) == len(SIDE_BY_SIDE)


def test_stored_kinds_are_one_table():
    from augcache.modes import MODES
    from augcache.store import kinds

    assert {m.stored for m in MODES.values()} - {None} <= set(kinds.KINDS.values())
    for path in [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "workflow/rules").glob("*.smk")]:
        text = path.read_text()
        for name in kinds.KINDS:
            assert f'stored == "{name}"' not in text, path


def test_the_backend_is_named_in_one_place():
    """augcache.backend names the backends; elsewhere only the library list says "tensorflow" (a
    distribution, whose version every store records)."""
    for name, path in modules().items():
        if name not in ("augcache.backend", "augcache.provenance"):
            assert '"tensorflow"' not in path.read_text(), path


def test_one_library_list(tmp_path):
    """One list of the libraries that shape numbers (pandas, which writes and parses the manifests,
    among them): a reuse key's versions are exactly those, and no other module spells such a list."""
    import ast

    from augcache import provenance, reuse

    assert "pandas" in provenance.LIBRARIES and "numpy" in provenance.LIBRARIES
    _, fields = reuse.job_key("write_manifest", {}, {}, {}, root=tmp_path)
    assert set(fields["versions"]) == {"augcache", *provenance.LIBRARIES}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "provenance.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List)):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                assert not {"numpy", "h5py"} <= names, f"{path}: a second list of libraries"


def test_architecture_names_every_module_and_only_files_that_exist():
    import re

    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text()
    layers = text[text.index("## Layers"):text.index("## Where to add")]
    named = set(re.findall(r"`([a-z_/]+)`", layers))
    for name in modules():
        if name not in ("augcache", "augcache.store"):  # the packages themselves
            assert name.removeprefix("augcache.").replace(".", "/") in named, f"{name} is in no layer"
    for path in re.findall(r"`((?:augcache|workflow|config|scripts|tests)/[\w/.]+\.\w+)`", text):
        assert (PACKAGE.parent / path).exists(), path
