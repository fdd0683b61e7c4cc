"""A run's place in cross-validation (eval.folds, :mod:`augcache.data.folds`): which rows it trains
on, which it is scored on, and, for the head refit on every labelled image, the head epoch the folds
chose.

Fold f's run trains on the other folds' rows of its kind's stores (each epoch's in its manifest's
order; the unaugmented store's shuffled among themselves) and is scored on fold f's rows of the
unaugmented store. A run without folds trains on every row of its stores and is scored on the
validation store, as is the refit head, whose validation images are among those it trains on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from augcache.base.store_fields import config_provenance
from augcache.data.folds import fold_mask, read_folds
from augcache.store.features import check_store, read_features, read_sample_ids
from augcache.store.stream import StoreBlocks
from augcache.training.sweep import best_epoch


@dataclass(frozen=True)
class Fold:
    """folds: eval.folds (0: off). number: the run's fold, None for a run without folds or the refit
    head. table: {sample_id: fold} of the run's repeat, read from folds_path. scored_on: the store
    whose rows (all, or the fold's) score the run."""

    folds: int
    number: int | None = None
    folds_path: str | None = None
    table: pd.Series | None = None
    scored_on: str | None = None

    @classmethod
    def of(cls, run, inputs) -> "Fold":
        if run.fold is None:
            return cls(run.folds, scored_on=inputs.val_store)
        return cls(run.folds, run.fold, inputs.folds, read_folds(inputs.folds), inputs.fold_val)

    @property
    def keep(self):
        """None (every row trains), or keep(sample ids) -> True for the rows that train: those not in
        the run's fold."""
        if self.number is None:
            return None
        return lambda ids: ~fold_mask(ids, self.table, self.number, self.folds_path)

    def training(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The index rows the run trains on, of those its stores cover."""
        return rows if self.number is None else rows[self.keep(rows["sample_id"].tolist())]

    def scored_rows(self) -> np.ndarray | None:
        """The rows of scored_on that score the run (None: all of them)."""
        if self.number is None:
            return None
        ids = read_sample_ids(self.scored_on)
        if set(ids) != set(self.table.index):
            raise ValueError(f"{self.scored_on} holds {len(ids)} images but {self.folds_path} folds "
                             f"{len(self.table)}: they come from different indexes; delete both and rerun")
        return np.flatnonzero(fold_mask(ids, self.table, self.number, self.folds_path))

    def validation(self, config, val_attrs: dict, rows_per_block: int | None):
        """What the run is scored on every head epoch: (x, y) arrays, or blocks of rows_per_block
        rows read again each time (streaming). A fold's rows of the unaugmented store are checked to
        come through the validation store's base."""
        rows = self.scored_rows()
        if rows is not None:
            check_store(self.scored_on, dict(config_provenance(config.spec, None, config.cache), split="train",
                                             weights_sha256=val_attrs["weights_sha256"]))
        if rows_per_block:
            return StoreBlocks(self.scored_on, rows_per_block, order=rows)
        x, y = read_features(self.scored_on)
        return (x, y) if rows is None else (x[rows], y[rows])

    def summary(self, fold_runs: int, keep_epoch: int | None) -> dict:
        """What a run's summary records of its fold: nothing without folds."""
        if not self.folds:
            return {}
        if self.number is not None:
            return {"folds": self.folds, "fold": self.number}
        return {"folds": self.folds, "fold": None,
                "refit": {"fold_runs": fold_runs, "epoch": keep_epoch,
                          "note": "trained on every labelled image, its validation images among them"}}


class FoldRows:
    """fold_rows(summary) -> (store, rows) of :func:`augcache.evaluation.scoring.score_heads`: the rows
    of the unaugmented store `store` a fold's run (its summary's repeat and fold) is scored on.
    folds_paths: the folds of repeat 0, 1, … in order."""

    def __init__(self, store, folds_paths):
        self.store, self.paths = store, list(folds_paths)
        self.found: dict[tuple, np.ndarray] = {}  # (repeat, fold) -> its rows: each run's two heads read them

    def __call__(self, summary: dict):
        repeat, number = int(summary["repeat"]), int(summary["fold"])
        if (repeat, number) not in self.found:
            fold = Fold(int(summary["folds"]), number, self.paths[repeat], read_folds(self.paths[repeat]), self.store)
            self.found[(repeat, number)] = fold.scored_rows()
        return self.store, self.found[(repeat, number)]


def knn_queries(store, folds_path, folds: int) -> list:
    """The k-NN classifier's queries with eval.folds (:class:`augcache.evaluation.scoring.KnnQueries`):
    each fold of repeat 0's split, its rows of the unaugmented store `store` against the other
    folds' rows of each bank."""
    from augcache.evaluation.scoring import KnnQueries

    table = read_folds(folds_path)
    queries = []
    for number in range(folds):
        fold = Fold(folds, number, folds_path, table, store)
        queries.append(KnnQueries(store, fold.scored_rows(), fold.keep, number))
    return queries


def refit_epoch(metrics_paths, select_on: str) -> int:
    """The head epoch (0-based) the fold runs chose: the best of their mean curve of select_on."""
    curves = [pd.read_csv(path) for path in metrics_paths]
    if len({len(c) for c in curves}) != 1:
        raise ValueError(f"the fold runs' metrics ({', '.join(map(str, metrics_paths))}) differ in head epochs")
    mean = pd.concat(curves).groupby("epoch", sort=True)[[select_on]].mean()
    return best_epoch(mean, select_on)
