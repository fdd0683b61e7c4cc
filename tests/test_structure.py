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


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def planted(tmp_path: Path, module: str, code: str) -> Path:
    """A copy of the package with code appended to one module (a path below the package): a
    defect planted, for showing that a check finds it."""
    import shutil

    copy = tmp_path / "augcache"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + "\n\n" + code.strip() + "\n")
    return copy


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


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    found = modules(root)
    return {name: imports(path, set(found), root) for name, path in found.items()}


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


def test_the_circle_check_finds_a_circle_through_the_package_itself(tmp_path):
    """The package's __init__ counts as a module: an import of the package inside a function of a
    module that __init__ reaches closes a circle."""
    copy = planted(tmp_path, "core/provenance.py", "def planted():\n    import augcache\n")
    (circle,) = circles(import_graph(copy))
    assert {"augcache", "augcache.core.provenance", "augcache.api"} <= set(circle)


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
    copy = planted(tmp_path, "store/features.py", "def planted():\n    from augcache.jobs.settings import Settings\n")
    assert upward(import_graph(copy)) == ["augcache.store.features imports augcache.jobs.settings"]


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


KIND_NAMES = ("EPOCHS", "NOAUG", "VAL", "MERGED", "TTA")


def kind_branches(root: Path = PACKAGE, rules: Path = PACKAGE.parent / "workflow/rules") -> list[str]:
    """Every place outside the table of kinds that branches on which kind a store is: a comparison
    (==, !=, is, is not, in) of a mode's ``stored`` or of a kind of the table with anything but None,
    in the package (by its syntax tree) and the rule files (by their text)."""
    import re

    def names_a_kind(node) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr in ("stored", *KIND_NAMES)
                or isinstance(node, ast.Name) and node.id in KIND_NAMES)

    def is_none_or_the_table(node) -> bool:
        return (isinstance(node, ast.Constant) and node.value is None
                or "KINDS" in {n.id for n in ast.walk(node) if isinstance(n, ast.Name)})

    found = []
    for name, path in modules(root).items():
        if name == "augcache.training.kinds":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                others = [s for s in sides if not names_a_kind(s)]
                # against None (no kind: the mode runs the base) or the table itself (a check) is no branch
                if any(map(names_a_kind, sides)) and not (others and all(map(is_none_or_the_table, others))):
                    found.append(f"{name}:{node.lineno}")
    branch = re.compile(r"\b(stored|kinds\.(" + "|".join(KIND_NAMES) + r"))\s*(==|!=|is(?! not None)|in)\s")
    for path in sorted(rules.glob("*.smk")):
        found += [f"{path.name}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                  if branch.search(line) and "is not None" not in line]
    return found


def test_stored_kinds_are_one_table():
    """Every mode reads a kind of the table (or none: it runs the base), and nothing outside the
    table branches on which kind it is: the modes, rules, costs, plan and training ask the kind."""
    from augcache.training import kinds
    from augcache.training.modes import MODES

    assert {m.stored for m in MODES.values()} - {None} <= set(kinds.KINDS.values())
    assert kind_branches() == []


def test_the_kind_check_finds_a_branch_on_a_kind(tmp_path):
    code = "def planted(run_mode):\n    if run_mode.stored is NOAUG:\n        return 1\n"
    copy = planted(tmp_path, "training/experiment.py", code)
    (found,) = kind_branches(copy)
    assert found.startswith("augcache.training.experiment:")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "train.smk").write_text("if MODES[mode].stored is kinds.EPOCHS:\n    pass\n")
    assert kind_branches(PACKAGE, rules) == ["train.smk:1"]


def test_a_mode_of_an_unknown_kind_is_refused_by_name():
    import pytest

    from augcache.training.kinds import StoredKind
    from augcache.training.modes import Mode

    folds = StoredKind("folds", "results/features/folds.h5", "train", augmented=True)
    with pytest.raises(ValueError, match="mode cv: 'folds' is no kind of store of the table"):
        Mode("cv", "cross-validation", uses_k=True, runs_base=False, stored=folds, manifests="cached")


BACKENDS = ("tensorflow", "jax", "jaxlib", "torch")


def backend_named(root: Path = PACKAGE) -> list[str]:
    """Every module but core/backend that imports a backend (anywhere, inside functions too) or
    spells one's name (core/provenance's list of libraries aside, whose versions a key records)."""
    found = []
    for name, path in modules(root).items():
        if name == "augcache.core.backend":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            imported = ([a.name for a in node.names] if isinstance(node, ast.Import)
                        else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(i.split(".")[0] in BACKENDS for i in imported):
                found.append(f"{name}:{node.lineno} imports {imported[0]}")
            if (isinstance(node, ast.Constant) and node.value in BACKENDS
                    and name != "augcache.core.provenance"):
                found.append(f"{name}:{node.lineno} names {node.value}")
    return found


def test_the_backend_is_named_in_one_place():
    """augcache.core.backend names the backends and imports them (``backend.tensorflow()`` for
    TensorFlow's own fast paths); elsewhere only the library list names them."""
    assert backend_named() == []


def test_the_backend_check_finds_an_import_inside_a_function(tmp_path):
    copy = planted(tmp_path, "data/images.py", "def planted():\n    import tensorflow as tf\n    return tf\n")
    assert [f.split(":")[0] for f in backend_named(copy)] == ["augcache.data.images"]
    copy = planted(tmp_path / "again", "data/pixels.py", "WHICH = 'jax'\n")
    assert [f.split(" ")[-1] for f in backend_named(copy)] == ["jax"]


def second_library_lists(root: Path = PACKAGE) -> list[str]:
    """Modules but core/provenance that spell a list of libraries (numpy and h5py among them)."""
    found = []
    for name, path in modules(root).items():
        if name == "augcache.core.provenance":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                if {"numpy", "h5py"} <= {e.value for e in node.elts if isinstance(e, ast.Constant)}:
                    found.append(f"{name}:{node.lineno}")
    return found


def key_versions_differ(root) -> set:
    """The libraries a reuse key records versions of, against core/provenance's list (empty when
    they are the same)."""
    from augcache.core import provenance
    from augcache.jobs import reuse

    _, fields = reuse.job_key("write_manifest", {}, {}, {}, root=root)
    return set(fields["versions"]) ^ {"augcache", *provenance.LIBRARIES}


def test_one_library_list(tmp_path):
    """One list of the libraries that shape numbers (pandas, which writes and parses the manifests,
    among them): a reuse key's versions are exactly those, and no other module spells such a list."""
    from augcache.core import provenance

    assert "pandas" in provenance.LIBRARIES and "numpy" in provenance.LIBRARIES
    assert key_versions_differ(tmp_path) == set()
    assert second_library_lists() == []


def test_the_library_checks_find_a_second_list(tmp_path, monkeypatch):
    copy = planted(tmp_path, "jobs/reuse.py", "SHAPING = ('numpy', 'h5py', 'keras')\n")
    assert [f.split(":")[0] for f in second_library_lists(copy)] == ["augcache.jobs.reuse"]
    # a key that records the versions of a list of its own
    from augcache.jobs import reuse

    monkeypatch.setattr(reuse, "library_versions", lambda gpu=False: {"augcache": "0", "numpy": "2", "h5py": "3"})
    assert key_versions_differ(tmp_path) >= {"pandas", "keras"}


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
