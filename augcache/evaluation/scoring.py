"""The evaluation jobs: every run's heads on the validation store and its test-time views, and the
k-NN classifier on the cached features (the numbers are :mod:`augcache.evaluation.metrics`'s)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augcache.core.provenance import check_fields
from augcache.evaluation.metrics import class_report, knn_classify, scores, tta_probabilities
from augcache.store.features import read_attrs, read_sample_ids as sample_ids
from augcache.store.stream import StoreBlocks
from augcache.store.writer import reading

log = logging.getLogger(__name__)

KNN_BLOCK_ROWS = 8192

# What may differ between stores read together through one base (a test-time view and the
# validation store, a k-NN bank and its queries): what each holds (its split, epoch or view, its
# augmentation and manifest, its rows and their hash) and where and how long it was made. Every other
# provenance field (the base, its weights, preset and preprocessing, the pixels, dtype, backend and
# versions, and any field added later) must match.
VARYING_FIELDS = ("augmentation", "manifest_sha256", "epoch", "tta_view", "split", "n_samples", "features_sha256",
                  "features_constant", "seconds", "device", "complete")


def base_fields(attrs: dict) -> dict:
    """The provenance fields of a store that stores read beside it must share (see VARYING_FIELDS)."""
    return {field: value for field, value in attrs.items() if field not in VARYING_FIELDS}


def check_views(val_store, view_stores, split: str = "val") -> dict:
    """The validation store's attributes, after checking that view v's store (v = 0, 1, …) holds
    view v of the same images, row for row, through the same base; a mismatch names the file and
    the field. (With eval.folds the views are of the unaugmented store's images, split "train".)"""
    val = read_attrs(val_store)
    ids = sample_ids(val_store)
    for view, path in enumerate(view_stores):
        attrs = read_attrs(path)
        check_fields(path, attrs, base_fields(val) | {"n_samples": val["n_samples"]})
        check_fields(path, attrs, {"split": split, "tta_view": view})
        if sample_ids(path) != ids:
            raise ValueError(f"{path}: sample_ids differ from {val_store}'s; delete it and rerun the workflow")
    return val


def probabilities(model, store, rows_per_block: int, rows=None) -> np.ndarray:
    """A classifier's probabilities on every row of a store (or on `rows`, in their order), read in
    blocks, in stored order."""
    from keras import ops

    # called directly (inference mode), not through predict(), which compiles a function per model
    parts = [ops.convert_to_numpy(model(x, training=False)) for x, _ in StoreBlocks(store, rows_per_block, rows)]
    return np.concatenate(parts) if parts else np.zeros((0, 0))


def labels_of(store) -> np.ndarray:
    import h5py

    with reading(store), h5py.File(store, "r") as handle:
        return handle["labels"][:].astype(np.int64)


def score_heads(run_dirs, val_store, view_stores, classes: list[str], exported_head: str | None,
                rows_per_block: int, fold_rows=None) -> dict:
    """Each run's final and best head (head.keras, best_head.keras of each folder) on the
    validation store: accuracy and macro-averaged accuracy, plain and averaged over the test-time
    views, and which images each got right; and the exported head's per-class recall and confusion matrix with the views (without
    them: :func:`head_class_report`).

    fold_rows: with eval.folds, fold_rows(summary) -> (store, rows) a fold's run is scored on (its
    fold's rows of the unaugmented store, fold_rows.store, and of the views, which are of the same
    images), None for a run without a fold.
    """
    import keras

    if fold_rows is not None:  # the views are of every labelled image, as the unaugmented store
        check_views(fold_rows.store, view_stores, split="train")
    else:
        check_views(val_store, view_stores)
    val_true = labels_of(val_store)
    labels = {}  # the labels of the store the fold runs are scored on, read once
    n_classes = len(classes)
    rows, exported = [], {}
    heads = [(run, which, f"{run}/{name}") for run in run_dirs
             for which, name in (("final", "head.keras"), ("best", "best_head.keras"))]
    if exported_head and exported_head not in [path for _, _, path in heads]:
        heads.append((str(Path(exported_head).parent), "best", exported_head))
    start = time.perf_counter()
    for number, (run, which, path) in enumerate(heads, 1):
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        summary = json.loads(Path(run, "summary.json").read_text()) if Path(run, "summary.json").exists() else {}
        scored = fold_rows(summary) if fold_rows and summary.get("fold") is not None else None
        if scored is not None:  # a fold's run: its fold's rows, of the views too
            store, order = scored
            if store not in labels:
                labels[store] = labels_of(store)
            plain, true = probabilities(model, store, rows_per_block, order), labels[store][order]
            views = [probabilities(model, view, rows_per_block, order) for view in view_stores]
        else:  # (with eval.folds, the refit head: the views are of other rows)
            plain, true = probabilities(model, val_store, rows_per_block), val_true
            views = [] if fold_rows else [probabilities(model, view, rows_per_block) for view in view_stores]
        averaged = tta_probabilities(plain, views)
        plain_scores, tta_scores = scores(true, plain, n_classes), scores(true, averaged, n_classes)
        rows.append({"run": run, "head": which, "mode": summary.get("mode"), "k": summary.get("k"),
                     "repeat": summary.get("repeat"), **({"fold": summary["fold"], "n_scored": len(true)}
                                                         if scored is not None else {}),
                     "accuracy": plain_scores["accuracy"],
                     "macro_accuracy": plain_scores["macro_accuracy"], "tta_accuracy": tta_scores["accuracy"],
                     "tta_macro_accuracy": tta_scores["macro_accuracy"],
                     # each validation image right (1) or wrong (0), in the store's order: what a
                     # paired comparison over the same images reads
                     "correct": (plain.argmax(axis=1) == true).astype(int).tolist(),
                     "tta_correct": (averaged.argmax(axis=1) == true).astype(int).tolist()})
        if path == exported_head:
            exported = {"head": path, "split": "val", **class_report(true, averaged, classes)}
        log.info("%s (%s head): accuracy %.4f, with %d test-time views %.4f [%d/%d]", run, which,
                 plain_scores["accuracy"], len(view_stores), tta_scores["accuracy"], number, len(heads))
    return {"tta_views": len(view_stores), "n_val": int(len(val_true)), "classes": list(classes), "runs": rows,
            "exported": exported, "seconds": time.perf_counter() - start}


def head_class_report(head_path, val_store, classes: list[str], rows_per_block: int = 4096) -> dict:
    """A head's accuracy, macro-averaged accuracy, per-class recall and confusion matrix on the
    validation store."""
    import keras

    model = keras.saving.load_model(head_path, compile=False, safe_mode=True)
    report = class_report(labels_of(val_store), probabilities(model, val_store, rows_per_block), classes)
    return {"head": str(head_path), "split": "val", **report}


def block_rows_of(store, memory_budget_mb) -> int:
    """Rows of a store read at a time by the evaluation jobs: blocks sized to half the memory
    budget (train.memory_budget_mb), as training streams them."""
    from augcache.core.memory import memory_budget_bytes
    from augcache.store.stream import block_rows
    from augcache.store.features import row_bytes

    return block_rows(row_bytes(read_attrs(store)), 256, memory_budget_bytes(memory_budget_mb) // 2)


@dataclass(frozen=True)
class KnnQueries:
    """What the k-NN classifier is scored on: the rows `rows` (None: all) of `store`, against the
    bank rows keep(sample ids) marks (keep None: all). With eval.folds, one per fold: the fold's
    rows of the unaugmented store against the other folds' rows of each bank (fold: its number)."""

    store: str
    rows: np.ndarray | None = None
    keep: object = None
    fold: int | None = None


def score_knn(val_store, banks: dict, classes: list[str], k: int, temperature: float, rows_per_block: int,
              queries: list | None = None) -> dict:
    """The k-NN classifier's validation scores with each bank ({name: its stores}), each timed:
    seconds of the classifier itself, and what extracting the bank's stores took; and which
    queries it got right (``correct``, or with folds ``fold_correct``, one entry per fold), what a
    paired comparison reads. queries: :class:`KnnQueries` (default: the validation store against
    every bank row). A bank store not made through the validation store's base (or not of
    training images) is refused, naming the file and the field."""
    from augcache.store.features import kept_rows, read_features

    # every bank holds training features through the validation store's base
    val = read_attrs(val_store)
    attrs = {path: read_attrs(path) for stores in banks.values() for path in stores}
    for path, found in attrs.items():
        check_fields(path, found, base_fields(val) | {"split": "train"})
    queries = queries or [KnnQueries(val_store)]
    asked = []
    for query in queries:
        features, labels = read_features(query.store)
        rows = slice(None) if query.rows is None else query.rows
        asked.append((query, features[rows], labels[rows].astype(np.int64)))
    true = np.concatenate([labels for _, _, labels in asked])
    # bank blocks small enough that 1024 queries' similarities to one stay near 32 MiB
    rows_per_block = min(rows_per_block, KNN_BLOCK_ROWS)
    results = []
    for name, stores in banks.items():
        start = time.perf_counter()
        parts = []
        for query, features, _ in asked:
            kept = {store: kept_rows(store, query.keep) for store in stores}

            def blocks(kept=kept):
                for store, rows in kept.items():
                    yield from StoreBlocks(store, rows_per_block, rows)

            parts.append(knn_classify(features, blocks, len(classes), k, temperature)[0])
        seconds = time.perf_counter() - start
        probs = np.concatenate(parts)
        found = scores(true, probs, len(classes))
        bank_rows = int(sum(int(attrs[s]["n_samples"]) for s in stores))
        right = [(p.argmax(axis=1) == labels).astype(int).tolist() for p, (_, _, labels) in zip(parts, asked)]
        outcome = ({"correct": right[0]} if queries[0].fold is None else
                   {"fold_correct": [{"repeat": 0, "fold": q.fold, "correct": r} for (q, _, _), r in zip(asked, right)]})
        results.append({"bank": name, "bank_rows": bank_rows, "stores": len(stores), **found, "seconds": seconds,
                        "extraction_seconds": float(sum(float(a.get("seconds", 0.0))
                                                        for a in (val, *(attrs[s] for s in stores)))),
                        "disk_bytes": int(sum(Path(s).stat().st_size for s in stores)), **outcome})
        log.info("k-NN (k %d, temperature %g) on the %s bank (%d rows): accuracy %.4f, macro %.4f, %.2f s",
                 k, temperature, name, bank_rows, found["accuracy"], found["macro_accuracy"], seconds)
    return {"k": k, "temperature": temperature, "n_val": int(len(true)), "banks": results}
