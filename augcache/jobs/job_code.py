"""The code a job runs: its rule script, the package's modules it imports and the data files they
read, found from the import graph (see :func:`augcache.jobs.reuse.code_sha256`, the code part of a
reuse key)."""

from __future__ import annotations

import ast
from pathlib import Path


def _module_file(root: Path, name: str) -> Path | None:
    """The file of module `name` (augcache.x or augcache.x.y) below root, or None."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_imports(tree: ast.AST, package: str) -> set[str]:
    """The modules of `package` a parsed file imports, anywhere in it (inside functions too): for
    ``from a.b import c``, both a.b and a.b.c (c may be a module)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name == package or name.startswith(f"{package}.")}


def _named_data(path: Path) -> set[Path]:
    """The data files beside a module that it names by a string (the config schema, the report's
    templates folder): such a file, or every file below such a folder."""
    beside = {entry.name: entry for entry in path.parent.iterdir() if entry.name != "__pycache__" and (
        entry.is_file() and entry.suffix not in (".py", ".pyc") or entry.is_dir() and not (entry / "__init__.py").exists())}
    names = {node.value for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    found = set()
    for name in names & beside.keys():
        entry = beside[name]
        found |= {entry} if entry.is_file() else {p for p in entry.rglob("*") if p.is_file()}
    return found


def code_files(script: Path, package_dir: Path) -> list[Path]:
    """The files a job running `script` runs: the script, every module of the package it imports,
    transitively (imports inside functions included, and each package's ``__init__`` on the way),
    and the data files those modules read (the schema, the templates). The package's own
    ``__init__`` is counted without the import inside its one function (``open_run``, the
    notebook's entry, which no job calls)."""
    root, package = package_dir.parent, package_dir.name
    init = package_dir / "__init__.py"
    todo, seen = [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        if path == init:  # its module-level imports only
            tree = ast.Module(body=[node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))],
                              type_ignores=[])
        imports = _package_imports(tree, package)
        for name in imports:
            parts = name.split(".")
            todo += [f for i in range(1, len(parts) + 1) if (f := _module_file(root, ".".join(parts[:i])))]
    data = set().union(*(_named_data(p) for p in seen if p != script))
    return sorted(seen | data)
