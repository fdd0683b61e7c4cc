"""How much disk a run's stores take, known before any of them is written.

A feature store of n rows takes its features (n × bytes per sample, in whole HDF5 chunks of rows),
its labels (8 bytes a row) and its sample ids (32 bytes a row plus the id), plus HDF5 metadata:
at most ``METADATA_PER_STORE`` bytes a store and ``METADATA_PER_ROW`` bytes a row (chunk index,
string heap). The pixel store is the same with uint8 pixels (H × W × 3 bytes a row) for features.
A run writes:

- K epoch stores of the training images for each repeat (K: the largest of cache.k and
  train.sweep_k; repeats: train.repeats), one merged store over repeat 0's epochs (labels and
  ids only: its features are views of the epoch stores);
- one store of the validation images;
- one store of the unaugmented training images (with the ``noaug`` mode, or eval.knn, whose bank
  it is);
- one store per test-time view of the validation images (eval.tta_views);
- the pixel store of every image (with data.pixel_store).

A variant (results/variants/<name>/) trains only cached runs of K = its cache.k: it writes
that many epoch stores for each repeat, the validation store and the pixel store, no merged or
unaugmented store.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augcache.core import paths
from augcache.jobs.settings import Settings
from augcache.store.quantise import stored_row_bytes
from augcache.store.space import DiskFullError, mib
from augcache.store.writer import chunk_rows
from augcache.training.kinds import KINDS, RunPlan
from augcache.training.modes import MODES

log = logging.getLogger(__name__)

METADATA_PER_STORE = 64 << 10
METADATA_PER_ROW = 128


@dataclass(frozen=True)
class PlannedStore:
    """One store of a run: where, how many rows, and bytes (payload; metadata comes on top)."""

    path: str
    rows: int
    bytes: int

    @property
    def bound(self) -> int:
        """The most the file takes: the payload plus the largest HDF5 metadata."""
        return self.bytes + METADATA_PER_STORE + METADATA_PER_ROW * self.rows


def _whole_chunks(rows: int, chunk: int) -> int:
    return math.ceil(rows / chunk) * chunk if rows else 0


def store_bytes(rows: int, row_bytes: int, id_chars: int, chunk: int | None = None, labels: bool = True,
                id_chunk: int | None = None) -> int:
    """Payload of a store: rows in whole chunks, labels (int64, chunks of up to 65536), sample ids
    (a 16-byte reference each, in chunks of id_chunk rows when given, and a 16-byte heap entry
    plus the id's bytes, id_chars in all)."""
    chunk = chunk or chunk_rows(row_bytes, rows)
    total = _whole_chunks(rows, chunk) * row_bytes
    if labels:
        total += _whole_chunks(rows, max(1, min(rows, 1 << 16))) * 8
    total += (_whole_chunks(rows, id_chunk) if id_chunk else rows) * 16 + 16 * rows + id_chars
    return total


@dataclass(frozen=True)
class RunSize:
    """What sizes a run's stores: image counts, id lengths, the base's feature shape and dtype."""

    n_train: int
    n_val: int
    train_id_chars: int
    val_id_chars: int
    feature_shape: tuple
    dtype: str
    n_test: int = 0
    test_id_chars: int = 0

    @property
    def bytes_per_sample_epoch(self) -> int:
        return stored_row_bytes(self.feature_shape, self.dtype)

    def plan(self, config: dict, variant: bool = False) -> list[PlannedStore]:
        """Every store the config's run writes, or with variant those of a variant's run (see the
        module's description): each kind's files (:mod:`augcache.training.kinds`), then the pixels."""
        row = self.bytes_per_sample_epoch
        evaluation = config.get("eval", {})
        run = RunPlan(k=config["cache"]["k"] if variant else max(Settings(config).k_values()),
                      # with eval.folds, one cache for every repeat
                      repeats=1 if evaluation.get("folds") else config["train"]["repeats"], k_main=config["cache"]["k"],
                      trained=frozenset(MODES[mode].stored for mode in config["train"]["modes"]),
                      knn=evaluation.get("knn") is not None, views=evaluation.get("tta_views", 0), variant=variant,
                      folds=evaluation.get("folds", 0),
                      labelled=(self.n_train + self.n_val, self.train_id_chars + self.val_id_chars))
        images = {"train": (self.n_train, self.train_id_chars), "val": (self.n_val, self.val_id_chars)}
        if run.folds:  # the training stores hold every labelled image
            images["train"] = run.labelled
        stores = [PlannedStore(*planned) for kind in KINDS.values()
                  for planned in kind.planned(run, *images[kind.split], row, store_bytes)]
        if config["data"]["pixel_store"]:
            size = config["data"]["pixel_size"] or config["data"]["image_size"]
            n = self.n_train + self.n_val + self.n_test
            ids = self.train_id_chars + self.val_id_chars + self.test_id_chars
            stores.append(PlannedStore(paths.PIXELS, n, store_bytes(n, int(np.prod(size)) * 3, ids, chunk=1,
                                                                    labels=False, id_chunk=min(n, 4096))))
        return stores


def prefixed(stores: list[PlannedStore], folder: str) -> list[PlannedStore]:
    """The same stores below `folder` (a variant's)."""
    return [dataclasses.replace(s, path=f"{folder}/{s.path}") for s in stores]


def summary(run: RunSize, stores: list[PlannedStore], config: dict) -> dict:
    """The arithmetic of a run's disk, as base.json and `augcache estimate` give it."""
    settings = Settings(config)
    k = max(settings.k_values())
    # with eval.folds: one cache of every labelled image, whatever the repeats
    repeats = 1 if settings.folds else config["train"]["repeats"]
    n = run.n_train + run.n_val if settings.folds else run.n_train
    # the run's own epoch stores (the totals count its variants' stores too)
    own = paths.VARIANT_PREFIX.split("{")[0]
    epoch_stores = [s for s in stores if "/train/epoch_" in s.path and not s.path.startswith(own)]
    return {
        "bytes_per_sample_epoch": run.bytes_per_sample_epoch,
        "feature_shape": list(run.feature_shape),
        "dtype": run.dtype,
        "n_train": run.n_train,
        "n_val": run.n_val,
        "epoch_stores": len(epoch_stores),
        "formula": f"{n} {'labelled' if settings.folds else 'training'} images × {k} epochs × {repeats} "
                   f"repeat(s) × {run.bytes_per_sample_epoch} bytes",
        "epochs_feature_bytes": n * k * repeats * run.bytes_per_sample_epoch,
        "epochs_bytes": sum(s.bytes for s in epoch_stores),
        "stores": {s.path: s.bytes for s in stores},
        "stores_at_most": {s.path: s.bound for s in stores},
        "total_bytes": sum(s.bytes for s in stores),
        "hdf5_metadata_at_most_bytes": sum(s.bound - s.bytes for s in stores),
    }


def describe(stores: list[PlannedStore]) -> str:
    lines = [f"  {s.path}: {s.rows} rows, {mib(s.bytes)}" for s in stores]
    total = sum(s.bytes for s in stores)
    metadata = sum(s.bound - s.bytes for s in stores)
    return "\n".join(lines + [f"  total {mib(total)}, plus at most {mib(metadata)} of HDF5 metadata"])


def check_run_fits(stores: list[PlannedStore], own_output=None, root=".") -> None:
    """Refuse a run whose stores not yet written cannot fit the free disk, with the arithmetic;
    log it otherwise. own_output: the calling job's store; when it lies below a folder (a
    variant's), the run's stores are taken below that folder too."""
    root = Path(root)
    for store in stores:
        if own_output and str(own_output) != store.path and str(own_output).endswith("/" + store.path):
            root = root / str(own_output)[: -len(store.path)]
            break
    missing = [s for s in stores if not (root / s.path).exists()]
    # a store being written now (another job) already holds its reserved space on the disk
    needed = sum(max(0, s.bound - _reserved(root / s.path)) for s in missing)
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(results).free
    text = describe(missing)
    if needed > free:
        raise DiskFullError(
            f"{results}: the run's stores not yet written need up to {mib(needed)} but the disk has "
            f"{mib(free)} free; nothing was extracted. Free space, move results/ to a larger disk, "
            f"or lower cache.k, train.repeats or the image size (cache.dtype: float16 halves "
            f"float32):\n{text}"
        )
    log.info("stores still to write (%s free):\n%s", mib(free), text if missing else "  none")


def _reserved(path: Path) -> int:
    """Disk already taken by the temporary files of a store being written."""
    if not path.parent.is_dir():
        return 0
    return sum(tmp.stat().st_blocks * 512 for tmp in path.parent.glob(f".{path.name}.*.tmp") if tmp.is_file())


def id_chars(sample_ids) -> int:
    """What a store's sample ids take in its string heap (UTF-8, 8-byte aligned)."""
    ids = [str(i) for i in (sample_ids.tolist() if hasattr(sample_ids, "tolist") else sample_ids)]
    # ASCII ids (the usual) are as many bytes as characters: no encoding per id
    measure = len if "".join(ids).isascii() else (lambda i: len(i.encode()))
    lengths = np.fromiter(map(measure, ids), dtype=np.int64, count=len(ids))
    return int(((lengths + 7) // 8 * 8).sum())


def run_size(index, feature_shape, dtype: str) -> RunSize:
    """A run's sizes from its dataset index."""
    train, val, test = (index[index["split"] == split]["sample_id"] for split in ("train", "val", "test"))
    return RunSize(len(train), len(val), id_chars(train), id_chars(val), tuple(feature_shape), dtype,
                   len(test), id_chars(test))


def is_variant_output(path) -> bool:
    return str(path).startswith(paths.VARIANT_PREFIX.split("{")[0])


def planned_stores(config: dict, index_path, base_info_path, output) -> tuple[RunSize, list[PlannedStore]]:
    """A workflow job's view of its run (a variant's when its output lies in a variant's folder):
    sizes from the index and the checked base's record."""
    import json

    from augcache.data.dataset import read_index

    info = json.loads(Path(base_info_path).read_text())
    run = run_size(read_index(index_path, ["sample_id", "split"]), info["feature_shape"], config["cache"]["dtype"])
    return run, run.plan(config, variant=is_variant_output(output))
