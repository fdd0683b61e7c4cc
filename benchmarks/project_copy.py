"""A fresh copy of the project for a benchmark's workflow runs (results and caches of its own)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("Snakefile", "workflow", "scripts", "augcache", "config", "profiles", "envs")


def copy_project(project: Path) -> Path:
    """Copy what a workflow run needs into the new folder `project`; returns it."""
    project.mkdir(parents=True)
    for part in PARTS:
        source = ROOT / part
        (shutil.copytree(source, project / part, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
         if source.is_dir() else shutil.copy2(source, project / part))
    return project


def keep_or_remove(work: Path, project: Path, keep: bool) -> None:
    """Print where the project copy is when asked to keep it; otherwise remove its folder."""
    if keep:
        print(f"project kept in {project}")
    else:
        shutil.rmtree(work)
