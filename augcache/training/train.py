"""Head training, one head epoch at a time, from any source of per-epoch training features.

Modes (each a feature source; the loop, head, optimizer and seeds are the same for all):

- ``cached``: head epoch n reads cached epoch n mod K, in that epoch's manifest order;
- ``replay``: the conv base runs every epoch on images augmented with the manifest's numbers of
  epoch n mod K, cast to the cache dtype: it must reproduce ``cached``;
- ``onthefly``: the conv base runs every epoch on images augmented with fresh numbers drawn for
  head epoch n (never repeating);
- ``noaug``: features of the unaugmented training images, shuffled each epoch;
- ``featureaug``: the ``noaug`` features, transformed every head epoch by seeded feature
  transforms (:mod:`augcache.augmentation.feature_augment`);
- ``hybrid``: the ``cached`` epochs, transformed the same way.

The modes' table is :data:`augcache.training.modes.MODES`; :mod:`augcache.training.experiment` picks the source.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from augcache.augmentation.manifest import AugmentConfig, build_manifest, draw_params, read_manifest
from augcache.augmentation.params import Resampling
from augcache.base.extract import compute_features
from augcache.core import backend
from augcache.core.provenance import ProvenanceError, sha256_file
from augcache.store.features import check_store, kept_rows, load_store, read_features
from augcache.store.quantise import as_stored
from augcache.store.stream import StoreBlocks
from augcache.training.head import HeadConfig, build_head
from augcache.training.sweep import SELECT_ON

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "conv_seconds")


def check_epoch_stores(store_paths, manifest_paths, expected: dict) -> list[dict]:
    """Attributes of K epoch stores, each checked against `expected`, its epoch number and its
    manifest's hash; all must come from the same weights."""
    if len(store_paths) != len(manifest_paths):
        raise ValueError(f"{len(store_paths)} epoch stores but {len(manifest_paths)} manifests: "
                         "each cached epoch needs its store and its manifest")
    checked = []
    weights = None
    for epoch, (store, manifest) in enumerate(zip(store_paths, manifest_paths, strict=True)):
        want = dict(expected, epoch=epoch, manifest_sha256=sha256_file(manifest))
        if weights is not None:
            want["weights_sha256"] = weights
        try:
            attrs = check_store(store, want)
        except ProvenanceError as err:
            if "'manifest_sha256'" not in str(err):
                raise
            raise ProvenanceError(f"{err}: {manifest} changed after {store} was made from it; delete "
                                  f"{store} and rerun the workflow to extract it again") from err
        weights = attrs["weights_sha256"]
        checked.append(attrs)
    return checked


def _kept(features, rows):
    """(x, y) of a store's rows (all where rows is None), in stored order."""
    x, y = features
    return (x, y) if rows is None else (x[rows], y[rows])


class CachedEpochs:
    """Head epoch n -> cached epoch n mod K (features already in manifest order), all in memory.

    extraction_seconds: what computing the K stores took, from their ``seconds`` attributes.
    keep: None, or keep(sample ids) -> which rows train (a fold's run: the other folds' rows,
    each epoch's in its manifest's order).
    """

    def __init__(self, store_paths, manifest_paths, expected: dict, keep=None):
        attrs = check_epoch_stores(store_paths, manifest_paths, expected)
        self.extraction_seconds = sum(float(a.get("seconds", 0.0)) for a in attrs)
        self.epochs = [_kept(read_features(store), kept_rows(store, keep)) for store in store_paths]

    def __call__(self, n: int):
        return [self.epochs[n % len(self.epochs)]], 0.0


class StreamedEpochs:
    """Head epoch n -> cached epoch n mod K read from its store in blocks of `rows_per_block` rows,
    in manifest order (see :class:`augcache.store.stream.StoreBlocks`)."""

    def __init__(self, store_paths, manifest_paths, expected: dict, rows_per_block: int, keep=None):
        attrs = check_epoch_stores(store_paths, manifest_paths, expected)
        self.extraction_seconds = sum(float(a.get("seconds", 0.0)) for a in attrs)
        self.epochs = [StoreBlocks(path, rows_per_block, order=kept_rows(path, keep)) for path in store_paths]

    def __call__(self, n: int):
        return self.epochs[n % len(self.epochs)], 0.0


class ShuffledStore:
    """Head epoch n -> the store's rows in the shuffle order drawn for (seed, n).

    rows_per_block: None holds the store in memory; a number reads it in blocks of that many rows.
    keep: None, or keep(sample ids) -> which rows train (a fold's run: the other folds'), shuffled
    among themselves.
    """

    def __init__(self, path, expected: dict, seed: int, rows_per_block: int | None = None, keep=None):
        self.path, self.seed, self.rows_per_block = path, seed, rows_per_block
        if rows_per_block is None:
            x, y, attrs = load_store(path, expected)
        else:
            attrs = check_store(path, expected)
        self.rows = kept_rows(path, keep)
        if rows_per_block is None:
            self.x, self.y = _kept((x, y), self.rows)
        self.n = int(attrs["n_samples"]) if self.rows is None else len(self.rows)
        self.extraction_seconds = float(attrs.get("seconds", 0.0))

    def __call__(self, n: int):
        order, _ = draw_params(AugmentConfig(), self.n, self.seed, n)
        if self.rows_per_block is None:
            return [(self.x[order], self.y[order])], 0.0
        return StoreBlocks(self.path, self.rows_per_block, order=order if self.rows is None else self.rows[order]), 0.0


class ConvOnTheFly:
    """Head epoch n -> the conv base run on augmented images of the rows ``manifest_for(n)``.

    pixels: where the images' pixels come from (:class:`augcache.data.pixels.Pixels`).
    """

    def __init__(self, manifest_for, pixels, feature_fn, image_size, batch_size: int,
                 resampling: Resampling, dtype: str):
        self.manifest_for = manifest_for
        self.pixels = pixels
        self.feature_fn = feature_fn
        self.image_size = image_size
        self.batch_size = batch_size
        self.resampling = resampling
        self.dtype = dtype

    def __call__(self, n: int):
        table = self.manifest_for(n)
        start = time.perf_counter()
        x = compute_features(table, self.pixels, self.feature_fn, self.image_size, self.batch_size,
                             self.resampling)
        seconds = time.perf_counter() - start
        return [(as_stored(x, self.dtype), table["label_index"].to_numpy())], seconds


def replay_manifests(manifest_paths, keep=None):
    """manifest_for(n): the manifest of cached epoch n mod K, read from disk once; keep: None, or
    keep(sample ids) -> the rows a fold's run trains on, in the manifest's order."""
    tables = [read_manifest(p) for p in manifest_paths]
    if keep is not None:
        tables = [t[keep(t["sample_id"].tolist())] for t in tables]
    return lambda n: tables[n % len(tables)]


def fresh_manifests(train_rows: pd.DataFrame, aug: AugmentConfig, seed: int, size=None):
    """manifest_for(n): numbers drawn for head epoch n itself, never repeating (size: that of the
    images augmented, see :func:`augcache.augmentation.manifest.draw_params`)."""
    return lambda n: build_manifest(train_rows, aug, seed, n, size)


def batches(blocks, batch_size: int):
    """Re-cut an iterable of (x, y) blocks into batches of batch_size rows (the last may be short)."""
    carry = None
    for x, y in blocks:
        if carry is not None:
            x, y = np.concatenate([carry[0], x]), np.concatenate([carry[1], y])
            carry = None
        full = len(y) // batch_size * batch_size
        for start in range(0, full, batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]
        if full < len(y):
            carry = x[full:], y[full:]
    if carry is not None:
        yield carry


def _signature(feature_shape, weighted: bool = False):
    tf = backend.tensorflow()

    spec = (tf.TensorSpec((None, *feature_shape), tf.float32), tf.TensorSpec((None,), tf.int64))
    return (*spec, tf.TensorSpec((None,), tf.float32)) if weighted else spec


class EpochStream:
    """Head epochs first..first+epochs-1 as one stream of batches: epoch n's n_samples rows of
    source(n), in order.

    One stream (rather than a dataset restarted every epoch) ties each batch to its head epoch by
    its position, so prefetching batches ahead of the trainer cannot feed an epoch the wrong data.

    class_weights: None, or one weight per class: batches are (x, y, sample weights) with each
    sample weighted by its class's (``fit``'s class_weight, which Keras refuses for generators).
    """

    def __init__(self, source, n_samples: int, batch_size: int, epochs: int, first: int = 0,
                 class_weights=None):
        self.source, self.n_samples, self.batch_size, self.epochs = source, n_samples, batch_size, epochs
        self.first = first
        self.class_weights = None if class_weights is None else np.asarray(class_weights, dtype=np.float32)
        self.conv_seconds: dict[int, float] = {}
        self.requested: list[int] = []

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n_samples // self.batch_size)

    def __iter__(self):
        for n in range(self.first, self.first + self.epochs):
            blocks, self.conv_seconds[n] = self.source(n)
            self.requested.append(n)
            fed = 0
            for x, y in batches(blocks, self.batch_size):
                fed += len(y)
                if fed > self.n_samples:
                    break
                yield (x, y) if self.class_weights is None else (x, y, self.class_weights[y])
            if fed != self.n_samples:
                raise ValueError(f"head epoch {n}: {fed} training samples, expected {self.n_samples}")

    def dataset(self, feature_shape):
        """What ``fit`` reads (with steps_per_epoch): under TensorFlow a tf.data dataset that reads
        two batches ahead; under the other backends the stream itself, a generator."""
        if backend.name() != backend.TENSORFLOW:
            return iter(self)
        tf = backend.tensorflow()

        data = tf.data.Dataset.from_generator(
            self.__iter__, output_signature=_signature(feature_shape, self.class_weights is not None))
        return data.prefetch(2)


def _cycled(val, batch_size: int):
    """The validation blocks' batches, over and over: one pass every validation_steps batches."""
    while True:
        yield from batches(val, batch_size)


def validation_data(val, feature_shape, batch_size: int) -> dict:
    """``fit``'s validation arguments: (x, y) arrays as they are (in batches of batch_size), or the
    batches of a StoreBlocks, read again for every validation (a tf.data dataset under
    TensorFlow, a generator of one pass per validation_steps batches under the others)."""
    if isinstance(val, tuple):
        return {"validation_data": val, "validation_batch_size": batch_size}
    steps = -(-val.n_rows() // batch_size)
    if backend.name() != backend.TENSORFLOW:
        return {"validation_data": _cycled(val, batch_size), "validation_steps": steps}
    tf = backend.tensorflow()

    data = tf.data.Dataset.from_generator(lambda: batches(val, batch_size),
                                          output_signature=_signature(feature_shape))
    # a known length lets Keras stop after the last batch instead of running into the end
    return {"validation_data": data.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2)}


def train_head(source, n_samples: int, feature_shape, n_classes: int, val, cfg: HeadConfig,
               seed: int, label: str = "train", class_weights=None, keep_epoch: int | None = None):
    """Train a new head for cfg.epochs head epochs in one ``fit``; returns (model, metrics DataFrame,
    weights at the best epoch by cfg.select_on: the first of equals).

    source(n) -> (blocks, conv_seconds): an iterable of (x float32, y) blocks holding the n_samples
    training features of head epoch n, in the order they are fed (no further shuffling). It is
    called once per head epoch, in order. val: (val_x, val_y) arrays, or an iterable of blocks that
    is read again for every validation. class_weights: None, or one loss weight per class (see
    :class:`EpochStream`). keep_epoch: the epoch whose weights are kept instead of the best (a
    head refit for the epochs cross-validation chose).
    """
    model = build_head(feature_shape, n_classes, cfg, seed)
    fit = EpochFit(model, source, n_samples, feature_shape, val, cfg, label, class_weights, keep_epoch)
    fit.run(cfg.epochs)
    return model, fit.metrics(), fit.best_weights


class EpochFit:
    """Fits a compiled model on a feature source epoch by epoch, possibly in several phases
    (``run`` again, after recompiling), numbering epochs on across phases; keeps one metrics row
    per epoch and the weights at the best epoch by cfg.select_on (the first of equals), or at
    keep_epoch when given."""

    def __init__(self, model, source, n_samples: int, feature_shape, val, cfg: HeadConfig, label: str,
                 class_weights=None, keep_epoch: int | None = None):
        self.model, self.source, self.n_samples = model, source, n_samples
        self.class_weights, self.keep_epoch = class_weights, keep_epoch
        self.feature_shape, self.val, self.cfg, self.label = feature_shape, val, cfg, label
        self.rows: list[dict] = []
        self.best_value = self.best_weights = None

    def run(self, epochs: int, total: int | None = None) -> None:
        """Train `epochs` more epochs (of `total` in all phases, for progress output)."""
        import keras

        cfg, model, first = self.cfg, self.model, len(self.rows)
        total = total or first + epochs
        data = EpochStream(self.source, self.n_samples, cfg.batch_size, epochs, first, self.class_weights)
        val_batch = max(cfg.batch_size, 256)
        better = (lambda a, b: a > b) if SELECT_ON[cfg.select_on] == "max" else (lambda a, b: a < b)
        fit = self

        class Record(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                seconds = time.perf_counter() - self.start
                row = {"epoch": epoch, "loss": logs["loss"], "accuracy": logs["accuracy"],
                       "val_loss": logs["val_loss"], "val_accuracy": logs["val_accuracy"],
                       "seconds": seconds, "conv_seconds": data.conv_seconds.get(epoch, 0.0)}
                fit.rows.append({k: float(v) if k != "epoch" else int(v) for k, v in row.items()})
                if fit.keep_epoch is not None:
                    if epoch == fit.keep_epoch:
                        fit.best_value, fit.best_weights = row[cfg.select_on], model.get_weights()
                elif fit.best_value is None or better(row[cfg.select_on], fit.best_value):
                    fit.best_value, fit.best_weights = row[cfg.select_on], model.get_weights()
                log.info("%s: epoch %d/%d loss %.4f accuracy %.3f val_loss %.4f val_accuracy %.3f (%.2f s)",
                         fit.label, epoch + 1, total, row["loss"], row["accuracy"], row["val_loss"],
                         row["val_accuracy"], seconds)

        model.fit(data.dataset(self.feature_shape), initial_epoch=first, epochs=first + epochs,
                  steps_per_epoch=data.steps_per_epoch, shuffle=False,
                  callbacks=[Record()], verbose=0, **validation_data(self.val, self.feature_shape, val_batch))
        if data.requested != list(range(first, first + epochs)):
            raise RuntimeError(f"{self.label}: epochs were fed out of order: {data.requested}")

    def metrics(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(METRIC_COLUMNS))
