"""The dataset index: one row per image with its id, path, label and split."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
INDEX_COLUMNS = ("sample_id", "path", "label", "label_index", "split")


def _class_files(folder: Path) -> dict[str, list[Path]]:
    classes = {}
    for entry in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        classes[entry.name] = files
    return classes


def listing_fingerprint(data_dir) -> str:
    """sha256 over the relative path, size and mtime of every file below data_dir.

    Changes when an image is added, removed or rewritten, so the index reruns then.
    """
    root = Path(data_dir)
    digest = hashlib.sha256()
    if not root.is_dir():
        return ""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            stat = path.stat()
            digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: round(n_c * val_fraction) rows of each class c, seeded."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5917]))
    is_val = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(labels)):
        rows = np.flatnonzero(labels == label)
        take = int(round(len(rows) * val_fraction))
        is_val[rng.permutation(rows)[:take]] = True
    return is_val


def index_folder(data_dir, val_fraction: float, seed: int) -> pd.DataFrame:
    """Index a folder of class subfolders, with ``train/`` and ``val/`` inside or split by fraction.

    sample_id is the path relative to data_dir (POSIX form); label_index numbers the sorted
    class names from 0. Rows are sorted by sample_id.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise ValueError(f"data.dir: {root} is not a folder")
    if (root / "train").is_dir() and (root / "val").is_dir():
        parts = {split: _class_files(root / split) for split in ("train", "val")}
        names = sorted(set(parts["train"]) | set(parts["val"]))
        rows = [
            (path, label, split)
            for split, classes in parts.items()
            for label, files in classes.items()
            for path in files
        ]
    else:
        classes = _class_files(root)
        names = sorted(classes)
        rows = [(path, label, None) for label, files in classes.items() for path in files]
    if len(names) < 2:
        raise ValueError(f"data.dir: {root} holds {len(names)} class folder(s); at least 2 are needed")
    empty = [label for label in names if not any(r[1] == label for r in rows)]
    if empty:
        raise ValueError(f"data.dir: {root}: class folder(s) without images: {', '.join(empty)}")
    table = pd.DataFrame(rows, columns=["abs", "label", "split"])
    table["sample_id"] = [p.relative_to(root).as_posix() for p in table["abs"]]
    table["path"] = [str(p) for p in table["abs"]]
    table["label_index"] = table["label"].map({name: i for i, name in enumerate(names)})
    table = table.sort_values("sample_id", kind="stable").reset_index(drop=True)
    if table["split"].isna().any():
        is_val = stratified_split(table["label"].to_numpy(), val_fraction, seed)
        table["split"] = np.where(is_val, "val", "train")
    for split in ("train", "val"):
        if not (table["split"] == split).any():
            raise ValueError(f"data.dir: {root}: the {split} split is empty (check data.val_fraction)")
    return table[list(INDEX_COLUMNS)]


def write_index(table: pd.DataFrame, path) -> None:
    table.to_csv(path, index=False, lineterminator="\n")


def read_index(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"sample_id": str, "path": str, "label": str, "split": str})


def class_names(index: pd.DataFrame) -> list[str]:
    """Class names in label_index order."""
    pairs = index[["label_index", "label"]].drop_duplicates().sort_values("label_index")
    return pairs["label"].tolist()
