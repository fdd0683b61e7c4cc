"""The dataset index: one row per image with its id, path, label and split, checked before any job.

The candidates come from :mod:`augcache.data.listing` (a folder of class subfolders or a CSV listing).
Every listed image is decoded once here, so a corrupt, truncated, empty or foreign file is found
before a GPU job starts. ``on_bad_image: error`` stops with one message listing every problem;
``skip`` leaves the bad files out and returns them with their reasons.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from augcache.core.atomic import write_csv
from augcache.data.images import ImageTooLarge, decode_file
from augcache.data.listing import (SKIPPED_COLUMNS, SPLITS, TEST, DatasetError, candidates_of, list_source,
                              read_candidates, read_problems, source_key)
from augcache.augmentation.manifest import seed_sequence
from augcache.core.progress import Progress

log = logging.getLogger(__name__)

INDEX_COLUMNS = ("sample_id", "path", "label", "label_index", "split")


def quick_check_decode(path) -> None:
    """Decode a file only to see that it is a whole image (JPEGs at their smallest DCT scale: every
    byte is still read and entropy-decoded, so truncation and corrupt streams are found)."""
    decode_file(path, at_least=(1, 1))


def check_image(path: str, decode=quick_check_decode):
    """(pixels, reason): what decode(path) returns, and why `path` is not a usable image (None if it is)."""
    from PIL import Image, UnidentifiedImageError

    if os.path.islink(path) and not os.path.exists(path):
        return None, "broken symbolic link"
    try:
        size = os.path.getsize(path)
    except OSError as err:
        return None, f"cannot be read: {err.strerror or err}"
    if size == 0:
        return None, "empty file (0 bytes)"
    try:
        pixels = decode(path)
    except UnidentifiedImageError:
        return None, "not an image (unrecognised content)"
    except PermissionError as err:
        return None, f"cannot be read: {err.strerror}"
    except ImageTooLarge as err:
        return None, str(err)
    except Image.DecompressionBombError as err:
        return None, f"too many pixels ({err})"
    except (OSError, ValueError, SyntaxError) as err:
        return None, f"corrupt or truncated image: {err}"
    if pixels is not None and (pixels.shape[0] == 0 or pixels.shape[1] == 0):
        return None, "image has no pixels"
    return pixels, None


def check_all(candidates, threads: int, decode=quick_check_decode, sink=None, block: int = 64,
              label: str = "decode"):
    """(good candidates, problems): every candidate decoded, `threads` at a time, in order.

    sink: called as sink(pixels, sample_ids) with the decoded pixels of each block's good
    candidates, in candidate order (the pixel store's rows); None discards them.
    """
    good, problems = [], []
    progress = Progress(len(candidates), label)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for start in range(0, len(candidates), block):
            part = candidates[start:start + block]
            results = list(pool.map(lambda c: check_image(c.path, decode), part))
            kept = [(c, pixels) for c, (pixels, reason) in zip(part, results) if not reason]
            problems += [(c.path, reason) for c, (_, reason) in zip(part, results) if reason]
            good += [c for c, _ in kept]
            if sink is not None and kept:
                sink(np.stack([pixels for _, pixels in kept]), [c.sample_id for c, _ in kept])
            progress.update(start + len(part))
    return good, problems


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: round(n_c * val_fraction) rows of each class c, seeded."""
    rng = np.random.default_rng(seed_sequence(seed, "split"))
    is_val = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(labels)):
        rows = np.flatnonzero(labels == label)
        take = int(round(len(rows) * val_fraction))
        if take == 0:
            log.warning("class %r has %d image(s): none is held out for validation (data.val_fraction %s); "
                        "its validation accuracy cannot be measured", label, len(rows), val_fraction)
        is_val[rng.permutation(rows)[:take]] = True
    return is_val


def assign_splits(table: pd.DataFrame, val_fraction: float, seed: int) -> pd.DataFrame:
    """Rows of a source without splits (sorted by sample_id) split into train and val by a seeded
    stratified fraction; a source that names its splits keeps them."""
    if table["split"].isna().any():
        is_val = stratified_split(table["label"].to_numpy(), val_fraction, seed)
        table["split"] = np.where(is_val, "val", "train")
    return table


def build_index(source, val_fraction: float, seed: int, on_bad_image: str = "error",
                threads: int = 4, decode=quick_check_decode, sink=None,
                listing=None, test_dir=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(index, skipped) of a folder or CSV source.

    index: INDEX_COLUMNS sorted by sample_id; label_index numbers the sorted class names from 0.
    skipped: SKIPPED_COLUMNS, the files left out (``on_bad_image: skip``). With ``error``, any
    problem raises DatasetError listing all of them. Every file is decoded once by decode(path)
    (see :func:`check_all` for sink); listing: the result of :func:`list_source`, if already made.
    """
    source = Path(source)
    candidates, problems, key = listing or list_source(source, test_dir)
    candidates, bad = check_all(candidates, threads, decode, sink)
    return index_of_checked(candidates, problems + bad, key, source, val_fraction, seed, on_bad_image)


def index_of_checked(candidates, problems, key: str, source, val_fraction: float, seed: int,
                     on_bad_image: str = "error") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(index, skipped) of candidates whose files were checked (the good ones, in sample id order)
    and the problems found listing and checking them, as :func:`build_index` returns them."""
    if problems and on_bad_image == "error":
        lines = "\n".join(f"  {path}: {reason}" for path, reason in problems)
        raise DatasetError(f"{key}: {len(problems)} bad file(s) or folder(s) in {source} "
                           f"(fix them, or set data.on_bad_image: skip to leave them out):\n{lines}")
    names = sorted({c.label for c in candidates if c.split != TEST})
    unknown = sorted({c.label for c in candidates if c.split == TEST} - set(names))
    if unknown:
        raise DatasetError(f"data.test_dir: class(es) {', '.join(unknown)} have test images but no training "
                           "or validation images; the model cannot predict them")
    if len(names) < 2:
        raise DatasetError(f"{key}: {source} holds {len(names)} class(es) with usable images; "
                           "at least 2 are needed")
    table = pd.DataFrame([c.__dict__ for c in candidates])
    table["label_index"] = table["label"].map({name: i for i, name in enumerate(names)})
    table = table.sort_values("sample_id", kind="stable").reset_index(drop=True)
    table = assign_splits(table, val_fraction, seed)
    for split in SPLITS:
        if not (table["split"] == split).any():
            raise DatasetError(f"{key}: {source}: the {split} split is empty (check data.val_fraction)")
    skipped = pd.DataFrame(problems, columns=list(SKIPPED_COLUMNS))
    return table[list(INDEX_COLUMNS)], skipped


def index_of_shards(candidates_path, listing_skipped_path, shard_skipped_paths, source, val_fraction: float,
                    seed: int, on_bad_image: str = "error") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(index, skipped) of a listing (:func:`write_listing`) whose files shard jobs checked, each
    writing its bad files (:func:`augcache.data.pixels.decode_shard`): what :func:`build_index` gives
    for the same files, its problems in the same order."""
    bad = [problem for path in shard_skipped_paths for problem in read_problems(path)]
    bad_paths = {path for path, _ in bad}
    candidates = [c for c in candidates_of(read_candidates(candidates_path)) if c.path not in bad_paths]
    return index_of_checked(candidates, read_problems(listing_skipped_path) + bad, source_key(source), source,
                            val_fraction, seed, on_bad_image)


def index_folder(data_dir, val_fraction: float, seed: int) -> pd.DataFrame:
    """Index of a clean source (any bad file is an error)."""
    return build_index(data_dir, val_fraction, seed)[0]


def write_index(table: pd.DataFrame, path) -> None:
    write_csv(path, table)


def read_index(path, columns=None) -> pd.DataFrame:
    """The index written by :func:`write_index`; columns: only these (a job that needs the sizes
    of a large index parses two of its five columns)."""
    return pd.read_csv(path, dtype={"sample_id": str, "path": str, "label": str, "split": str},
                       keep_default_na=False, usecols=columns)


def class_names(index: pd.DataFrame) -> list[str]:
    """Class names in label_index order."""
    pairs = index[["label_index", "label"]].drop_duplicates().sort_values("label_index")
    return pairs["label"].tolist()
