"""The package's shape: no import circle (imports inside functions counted), the backend a leaf,
no module over 400 lines, and each concept spelled in one place."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "augcache"
MAX_LINES = 400


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str], root: Path = PACKAGE) -> set[str]:
    """The package modules a module imports anywhere in its body (functions included)."""
    found = set()
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
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
    found.discard(own)
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
    assert graph["augcache.core.backend"] == set()


# The package's layers, bottom to top: a module imports only from its own subpackage and from
# layers below it (ARCHITECTURE.md draws them). Subpackages on one floor know nothing of each other.
LAYERS = (
    {"core"},
    {"store", "augmentation"},
    {"data"},
    {"base"},
    {"evaluation"},
    {"training"},
    {"jobs"},
    {"report"},
    {"api", "cli", ""},  # "" is the package's __init__
)


def floor(module: str) -> tuple[int, str]:
    """(layer number, subpackage or top-level module) of a module of the package."""
    part = module.removeprefix("augcache").removeprefix(".").split(".")[0]
    for number, names in enumerate(LAYERS):
        if part in names:  # the entry points on the top floor are one room
            return number, "entry points" if number == len(LAYERS) - 1 else part
    raise AssertionError(f"{module} is in no layer of tests/test_structure.py's LAYERS")


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import that goes up a layer, or sideways to another subpackage of the same floor."""
    found = []
    for module, imported in sorted(graph.items()):
        level, part = floor(module)
        for target in sorted(imported):
            target_level, target_part = floor(target)
            if target_level > level or (target_level == level and target_part != part):
                found.append(f"{module} imports {target}")
    return found


def test_imports_go_down_the_layers():
    assert upward(import_graph()) == []


def test_the_layer_check_finds_an_import_that_goes_up(tmp_path):
    """The check above, on a copy of the package with one import planted inside a function."""
    import shutil

    copy = tmp_path / "augcache"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    features = copy / "store" / "features.py"
    features.write_text(features.read_text() + "\n\ndef planted():\n    from augcache.jobs.settings import Settings\n")
    names = {module_name(p, copy): p for p in sorted(copy.rglob("*.py"))}
    graph = {name: imports(path, set(names), copy) for name, path in names.items()}
    assert upward(graph) == ["augcache.store.features imports augcache.jobs.settings"]


def test_no_module_over_400_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_schema_lists_the_pooling_choices():
    import yaml

    from augcache.base import pooling

    schema = yaml.safe_load((PACKAGE.parent / "workflow/schemas/config.schema.yaml").read_text())
    choices = schema["properties"]["conv_base"]["properties"]["pooling"]["enum"]
    assert choices == list(pooling.CHOICES)
    assert set(pooling.MAP_POOLING) | set(pooling.TOKEN_POOLING) | {"none"} == set(choices)


def test_every_mode_has_its_place_side_by_side():
    """A new mode is in the side-by-side table unless it only checks another."""
    from augcache.training.modes import MODES, SIDE_BY_SIDE

    assert [m.name for m in SIDE_BY_SIDE] == ["noaug", "featureaug", "cached", "hybrid", "onthefly"]
    assert {m.name for m in MODES.values() if m.checks is None} == {m.name for m in SIDE_BY_SIDE}
    assert len({m.side_by_side for m in SIDE_BY_SIDE}) == len(SIDE_BY_SIDE)


def test_stored_kinds_are_one_table():
    from augcache.training.modes import MODES
    from augcache.training import kinds

    assert {m.stored for m in MODES.values()} - {None} <= set(kinds.KINDS.values())
    for path in [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "workflow/rules").glob("*.smk")]:
        text = path.read_text()
        for name in kinds.KINDS:
            assert f'stored == "{name}"' not in text, path


def test_the_backend_is_named_in_one_place():
    """augcache.core.backend names the backends; elsewhere only the library list says "tensorflow" (a
    distribution, whose version every store records)."""
    for name, path in modules().items():
        if name not in ("augcache.core.backend", "augcache.core.provenance"):
            assert '"tensorflow"' not in path.read_text(), path


def test_one_library_list(tmp_path):
    """One list of the libraries that shape numbers (pandas, which writes and parses the manifests,
    among them): a reuse key's versions are exactly those, and no other module spells such a list."""
    import ast

    from augcache.core import provenance
    from augcache.jobs import reuse

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
    for name, path in modules().items():
        if path.name != "__init__.py":  # the packages themselves are the folders of the table
            assert name.removeprefix("augcache.").replace(".", "/") in named, f"{name} is in no layer"
    for path in re.findall(r"`((?:augcache|workflow|config|scripts|tests)/[\w/.]+\.\w+)`", text):
        assert (PACKAGE.parent / path).exists(), path


def test_a_log_or_benchmark_path_is_spelled_in_the_table_of_jobs_only():
    """The rule files and the package name a job's log and benchmark through the table of jobs
    (augcache/jobs/table.py); only it and core/paths (the two folders) spell them."""
    spelled = ("{LOGS}", "{BENCHMARKS}", "paths.LOGS", "paths.BENCHMARKS", "results/logs", "results/benchmarks", ".tsv")
    allowed = {PACKAGE / "jobs" / "table.py", PACKAGE / "core" / "paths.py"}
    files = [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "workflow/rules").glob("*.smk"),
             *(PACKAGE.parent / "scripts").glob("*.py")]
    found = [f"{path.relative_to(PACKAGE.parent)}: {word}" for path in files if path not in allowed
             for word in spelled if word in path.read_text()]
    assert found == []
