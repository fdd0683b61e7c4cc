"""A finished workflow run, read from its results folder: for notebooks and scripts.

    run = augcache.open_run("results")
    run.modes()            # one row per mode and K: accuracy mean ± sd, seconds, speedup, disk
    run.runs()             # one row per training run (its summary.json)
    run.curves("cached")   # metrics.csv of a run, one row per head epoch
    run.selection          # which head the exported model carries, and why
    run.head()             # that head (Keras model: features -> class probabilities)
    run.model()            # the exported model (raw images -> class probabilities)
    run.features("train", epoch=0)   # (features, labels, sample ids) of a store, as arrays
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augcache.core import paths
from augcache.training.modes import CACHE_MODE, MODES, STAGES


def _under(results: Path, pattern: str) -> Path:
    """A workflow path pattern ("results/…") below this run's results folder."""
    return results / pattern.removeprefix("results/")


@dataclass(frozen=True)
class Features:
    """A feature store read into memory: features (n, …) float32, labels (n,), sample ids (n,)."""

    features: np.ndarray
    labels: np.ndarray
    sample_ids: list


class FinishedRun:
    """The outputs of one workflow run below `results` (the folder the workflow wrote)."""

    def __init__(self, results="results"):
        self.results = Path(results)
        if not self.results.is_dir():
            raise ValueError(f"{self.results}: no such folder; open_run takes the results folder of a "
                             "finished workflow run")
        self._summaries = sorted(self.results.glob("*/*/*/summary.json"))
        self._summaries = [p for p in self._summaries if p.parts[-4] in STAGES]
        if not self._summaries:
            raise ValueError(f"{self.results}: no finished training run (results/train/<mode>/<run>/summary.json)")

    def runs(self) -> pd.DataFrame:
        """Every training run's summary, one row each (column ``run``: its folder)."""
        from augcache.report.tables import load_runs

        summaries, _ = load_runs(p.parent for p in self._summaries)
        return summaries

    def modes(self) -> pd.DataFrame:
        """The report's table: one row per mode and K, accuracy mean and sd over repeats, conv,
        head and total seconds, speedup, cache on disk. With eval.folds, over the fold runs (the
        heads refit on every labelled image, scored on images they trained on, left out)."""
        from augcache.report.tables import mode_table

        table = self.runs()
        if "refit" in table:
            table = table[table["refit"].isna()]
        return mode_table(table)

    def curves(self, mode: str = CACHE_MODE.name, k: int | None = None, repeat: int = 0) -> pd.DataFrame:
        """metrics.csv of one run: one row per head epoch. k: K of a mode that uses it (default:
        the largest K run)."""
        table = self.runs()
        rows = table[(table["mode"] == mode) & (table["repeat"] == repeat)]
        if MODES[mode].uses_k:
            rows = rows[rows["k"] == (k if k is not None else rows["k"].max())]
        if rows.empty:
            raise ValueError(f"{self.results}: no {mode} run of repeat {repeat}" + (f" and K={k}" if k else ""))
        return pd.read_csv(Path(rows["run"].iloc[0]) / "metrics.csv")

    @property
    def selection(self) -> dict:
        """Which head the exported model carries (point, epoch, why), from selection.json."""
        return json.loads(_under(self.results, paths.SELECTION).read_text())

    @property
    def classes(self) -> list[str]:
        return json.loads(_under(self.results, paths.MODEL_CLASSES).read_text())["classes"]

    def head(self):
        """The chosen head at its best epoch (a Keras model: features -> class probabilities)."""
        import keras

        return keras.saving.load_model(_under(self.results, self.selection["head"]))

    def model(self):
        """The exported model: raw images (float32 pixels in [0, 255]) -> class probabilities."""
        from augcache.training.full_model import load_full_model

        return load_full_model(_under(self.results, paths.MODEL))

    def store(self, split: str = "train", epoch: int | None = None, repeat: int = 0) -> Path:
        """The path of a feature store: split "train" with an epoch (a cached epoch), "train"
        without one (the unaugmented training images) or "val"."""
        if split == "val":
            return _under(self.results, paths.VAL_STORE)
        if split != "train":
            raise ValueError(f"split: {split!r} is not 'train' or 'val'")
        if epoch is None:
            return _under(self.results, paths.NOAUG_STORE)
        return _under(self.results, paths.epoch_store(repeat, epoch))

    def features(self, split: str = "train", epoch: int | None = None, repeat: int = 0) -> Features:
        """A feature store (see :meth:`store`) read and checked, as float32 arrays."""
        import h5py

        from augcache.store.features import read_attrs, read_rows

        path = self.store(split, epoch, repeat)
        if not path.is_file():
            raise ValueError(f"{path}: no such store in this run")
        read_attrs(path)  # complete, not damaged, not constant
        with h5py.File(path, "r") as handle:
            return Features(read_rows(handle), handle["labels"][:],
                            [s.decode() for s in handle["sample_ids"][:]])


def open_run(results="results") -> FinishedRun:
    """The finished workflow run whose outputs are in `results` (see :class:`FinishedRun`)."""
    return FinishedRun(results)
