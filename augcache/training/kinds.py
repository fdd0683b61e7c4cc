"""The kinds of feature stores, in one table read by the modes, the rules, the cost account, the
disk plan and training.

Plain values only (no TensorFlow, no HDF5), so the workflow's rule files can read it when they are
parsed. A mode names the kind its training features come from (:attr:`augcache.training.modes.Mode.stored`);
the validation store serves every run.
"""

from __future__ import annotations

from dataclasses import dataclass

from augcache.core import paths


@dataclass(frozen=True)
class StoredKind:
    """One kind of feature store.

    name: how rules' inputs and the code call it.
    path: the store's path, or its pattern with {repeat_dir} and {epoch} for a per-epoch kind.
    split: whose images it holds ("train" or "val").
    augmented: its rows are augmented by a manifest's numbers.
    per_epoch: one store per cached epoch (and repeat), read K at a time by a run.
    job: the extraction job's benchmark (below results/benchmarks/) for a kind made in one job.
    """

    name: str
    path: str
    split: str
    augmented: bool
    per_epoch: bool
    job: str | None = None


EPOCHS = StoredKind("epochs", paths.EPOCH_STORE, "train", augmented=True, per_epoch=True)
NOAUG = StoredKind("noaug", paths.NOAUG_STORE, "train", augmented=False, per_epoch=False,
                   job="extract/train_noaug")
VAL = StoredKind("val", paths.VAL_STORE, "val", augmented=False, per_epoch=False, job="extract/val")
# repeat 0's K epoch stores as one store whose rows refer to theirs (for reading the cache whole)
MERGED = StoredKind("merged", paths.TRAIN_STORE, "train", augmented=True, per_epoch=False)

# eval.tta_views: one store per test-time view ({view}) of the validation images, rows as VAL's
TTA = StoredKind("tta", paths.TTA_STORE, "val", augmented=True, per_epoch=False)

KINDS = {kind.name: kind for kind in (EPOCHS, NOAUG, VAL, MERGED, TTA)}
