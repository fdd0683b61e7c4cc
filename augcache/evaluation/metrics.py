"""Scores of a classifier beyond plain accuracy: per class, averaged over augmented views, and a
k-nearest-neighbour classifier on frozen features. numpy only.

- Macro-averaged accuracy is the mean of the per-class recalls (classes with samples only), the
  accuracy a classifier gets when every class counts the same.
- Test-time augmentation (TTA) averages a classifier's probabilities over the unaugmented image
  and V augmented views of it; with V = 0 it is the plain evaluation.
- The k-NN classifier follows DINO's evaluation: L2-normalised features (conv maps averaged over
  their positions first), cosine similarity, the k most similar bank rows vote for their class
  with weight exp(similarity / temperature). The bank is read in blocks, so memory is bounded by
  the block size, not by the bank.
"""

from __future__ import annotations

import numpy as np


def class_counts(labels, n_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)[:n_classes]


def balanced_class_weights(labels, n_classes: int) -> np.ndarray:
    """One loss weight per class, n / (n_classes × count), scikit-learn's "balanced": every class
    weighs as much in the loss as with equal counts. A class without samples gets 0."""
    counts = class_counts(labels, n_classes).astype(np.float64)
    with np.errstate(divide="ignore"):
        weights = np.where(counts > 0, counts.sum() / (n_classes * counts), 0.0)
    return weights


def confusion_matrix(true, predicted, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true class, column = predicted class."""
    true, predicted = np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    return np.bincount(true * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_recall(confusion: np.ndarray) -> np.ndarray:
    """Each class's fraction of samples predicted as itself; NaN for a class without samples."""
    counts = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.diag(confusion) / np.maximum(counts, 1), np.nan)


def _confusion(true, probabilities, n_classes: int) -> np.ndarray:
    return confusion_matrix(true, np.asarray(probabilities).argmax(axis=1), n_classes)


def _scores(confusion: np.ndarray) -> dict:
    """n, accuracy and macro_accuracy (mean per-class recall) of a confusion matrix."""
    n = int(confusion.sum())
    if not n:
        return {"n": 0, "accuracy": float("nan"), "macro_accuracy": float("nan")}
    return {"n": n, "accuracy": float(np.trace(confusion) / n),
            "macro_accuracy": float(np.nanmean(per_class_recall(confusion)))}


def scores(true, probabilities, n_classes: int) -> dict:
    """accuracy, macro_accuracy (mean per-class recall) and n of predictions' argmax."""
    return _scores(_confusion(true, probabilities, n_classes))


def class_report(true, probabilities, classes: list[str]) -> dict:
    """:func:`scores`, each class's recall and count, and the confusion matrix (rows: true class,
    columns: predicted, both in the order of classes)."""
    confusion = _confusion(true, probabilities, len(classes))
    recall = per_class_recall(confusion)
    return {**_scores(confusion), "classes": list(classes),
            "recall": {name: (None if np.isnan(r) else float(r)) for name, r in zip(classes, recall)},
            "count": {name: int(c) for name, c in zip(classes, confusion.sum(axis=1))},
            "confusion": confusion.tolist()}


def tta_probabilities(plain, views) -> np.ndarray:
    """The mean of the plain probabilities and those of each augmented view (same rows, same
    order); the plain ones alone when there are no views."""
    total = np.array(plain, dtype=np.float64)
    count = 1
    for view in views:
        view = np.asarray(view, dtype=np.float64)
        if view.shape != total.shape:
            raise ValueError(f"a test-time view's probabilities have shape {view.shape}, expected {total.shape}")
        total += view
        count += 1
    return total / count


def knn_vectors(features) -> np.ndarray:
    """(n, d) float32 unit vectors: conv maps (n, h, w, c) averaged over positions, tokens or
    vectors as they are (flattened), each divided by its L2 norm."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim == 4:
        x = x.mean(axis=(1, 2))
    x = x.reshape(len(x), -1)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class KNN:
    """Running k nearest bank rows of a fixed set of queries, fed the bank block by block.

    queries: (q, d) unit vectors (see :func:`knn_vectors`). After every block has been added,
    :attr:`similarity` and :attr:`index` hold each query's k most similar bank rows (most similar
    first; ties to the earlier row), :attr:`labels` their classes.
    """

    def __init__(self, queries: np.ndarray, k: int):
        self.queries, self.k = queries, int(k)
        q = len(queries)
        self.similarity = np.full((q, 0), -np.inf, dtype=np.float32)
        self.index = np.zeros((q, 0), dtype=np.int64)
        self.labels = np.zeros((q, 0), dtype=np.int64)
        self.seen = 0

    def add(self, bank: np.ndarray, labels) -> None:
        """A block of bank rows (unit vectors) and their labels, numbered on from the rows before."""
        sims = self.queries @ bank.T
        index = np.broadcast_to(np.arange(self.seen, self.seen + len(bank)), sims.shape)
        label = np.broadcast_to(np.asarray(labels, dtype=np.int64), sims.shape)
        sims = np.concatenate([self.similarity, sims], axis=1)
        index = np.concatenate([self.index, index], axis=1)
        label = np.concatenate([self.labels, label], axis=1)
        keep = np.argpartition(-sims, min(self.k, sims.shape[1]) - 1, axis=1)[:, : self.k]
        # the k kept, most similar first, the earlier row first among equals
        chosen_sims, chosen_index = np.take_along_axis(sims, keep, axis=1), np.take_along_axis(index, keep, axis=1)
        keep = np.take_along_axis(keep, np.lexsort((chosen_index, -chosen_sims), axis=1), axis=1)
        self.similarity = np.take_along_axis(sims, keep, axis=1)
        self.index = np.take_along_axis(index, keep, axis=1)
        self.labels = np.take_along_axis(label, keep, axis=1)
        self.seen += len(bank)

    def probabilities(self, n_classes: int, temperature: float) -> np.ndarray:
        """(q, n_classes) weighted votes, exp(similarity / temperature) per neighbour, normalised."""
        votes = np.zeros((len(self.queries), n_classes), dtype=np.float64)
        weights = np.exp(self.similarity.astype(np.float64) / temperature)
        np.add.at(votes, (np.arange(len(votes))[:, None], self.labels), weights)
        return votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-300)


def knn_classify(query_features, bank_blocks, n_classes: int, k: int = 20, temperature: float = 0.07,
                 query_rows: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, neighbour indices) of the k-NN classifier: every query against every bank row.

    bank_blocks: a callable returning a fresh iterable of (features, labels) blocks (a store read
    in blocks, :class:`augcache.store.stream.StoreBlocks`); it is read once per query_rows queries, so
    memory holds query_rows × (block rows + k) similarities at once.
    """
    queries = knn_vectors(query_features)
    probabilities = np.zeros((len(queries), n_classes))
    neighbours = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), query_rows):
        part = KNN(queries[start:start + query_rows], k)
        for features, labels in bank_blocks():
            part.add(knn_vectors(features), labels)
        if part.seen < k:
            raise ValueError(f"eval.knn.k is {k}, but the bank has only {part.seen} rows")
        probabilities[start:start + len(part.queries)] = part.probabilities(n_classes, temperature)
        neighbours[start:start + len(part.queries)] = part.index
    return probabilities, neighbours
