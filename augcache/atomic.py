"""Atomic outputs: write under a temporary name beside the target, rename when complete."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside `path`; it becomes `path` when the block succeeds and is
    removed when it fails, so a killed or failed writer never leaves a file that looks complete.

    suffix: the ending a writer insists on (``.keras``, ``.weights.h5``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
