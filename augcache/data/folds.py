"""Cross-validation folds (eval.folds): every labelled image (train and val together; test images
stay held out) in one of F folds, stratified by class and seeded, one split per repeat.

Repeat r's folds come from the run's seed + r (as its manifests do), drawn from a stream of their own
(:func:`augcache.augmentation.manifest.seed_sequence`, ``"folds"``), so they never share numbers
with an epoch's manifest. Within each class, in sample_id order, the images are permuted and dealt
to the folds in turn, each class starting where the previous one stopped: fold sizes differ by at
most one image, and each class's by at most one per fold.

Fold f's head trains on the other folds' rows of the stores (which cover every labelled image) and
is scored on fold f's rows of the unaugmented store; the stores are the same for every F.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from augcache.augmentation.manifest import seed_sequence
from augcache.core.atomic import write_csv

# the splits whose images the folds (and, with eval.folds, the stores) cover
LABELLED = ("train", "val")
FOLD_COLUMNS = ("sample_id", "label", "fold")


def labelled_rows(index: pd.DataFrame, folds: int) -> pd.DataFrame:
    """The index rows the training stores and manifests cover: the training images, or with folds
    (eval.folds > 0) every labelled image, train and val together, in index order."""
    splits = LABELLED if folds else ("train",)
    return index[index["split"].isin(splits)]


def assign_folds(rows: pd.DataFrame, folds: int, seed: int) -> pd.DataFrame:
    """(sample_id, label, fold) of every row, in sample_id order: stratified, seeded folds 0..F-1.

    A class with fewer images than folds leaves some folds without it (its images still go to
    distinct folds)."""
    if folds < 2:
        raise ValueError(f"eval.folds: {folds} fold(s); cross-validation needs at least 2")
    table = rows[["sample_id", "label"]].sort_values("sample_id", kind="stable").reset_index(drop=True)
    if len(table) < folds:
        raise ValueError(f"eval.folds: {folds} folds, but only {len(table)} labelled images")
    rng = np.random.default_rng(seed_sequence(seed, "folds"))
    fold = np.empty(len(table), dtype=np.int64)
    start = 0
    labels = table["label"].to_numpy()
    for label in sorted(set(labels)):
        members = rng.permutation(np.flatnonzero(labels == label))
        fold[members] = (start + np.arange(len(members))) % folds
        start = (start + len(members)) % folds
    table["fold"] = fold
    return table


def write_folds(table: pd.DataFrame, path) -> None:
    write_csv(path, table[list(FOLD_COLUMNS)])


def read_folds(path) -> pd.Series:
    """{sample_id: fold} of a folds file."""
    table = pd.read_csv(path, dtype={"sample_id": str, "label": str, "fold": np.int64}, keep_default_na=False)
    missing = [c for c in FOLD_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: not a folds file (no column {', '.join(missing)})")
    return table.set_index("sample_id")["fold"]


def fold_mask(sample_ids, folds: pd.Series, fold: int, path="the folds file") -> np.ndarray:
    """True for each of sample_ids (a store's rows, in order) in `fold`; an id the folds do not
    list is an error naming it (the store and the folds were made from different indexes)."""
    found = folds.reindex(list(sample_ids))
    if found.isna().any():
        missing = list(found.index[found.isna()][:3])
        raise ValueError(f"{path}: no fold for {missing} (the stores and the folds come from different "
                         "indexes; delete the folds file and rerun the workflow)")
    return found.to_numpy() == fold
