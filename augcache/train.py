"""Head training, one head epoch at a time, from any source of per-epoch training features.

Modes (each a feature source; the loop, head, optimizer and seeds are the same for all):

- ``cached``: head epoch n reads cached epoch n mod K, in that epoch's manifest order;
- ``replay``: the conv base runs every epoch on images augmented with the manifest's numbers of
  epoch n mod K, cast to the cache dtype: it must reproduce ``cached``;
- ``onthefly``: the conv base runs every epoch on images augmented with fresh numbers drawn for
  head epoch n (never repeating);
- ``noaug``: features of the unaugmented training images, shuffled each epoch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from augcache.augment import Resampling
from augcache.extract import compute_features
from augcache.head import HeadConfig, build_head
from augcache.manifest import AugmentConfig, build_manifest, draw_params, params_array, read_manifest
from augcache.provenance import ProvenanceError, check_fields, sha256_file
from augcache.store import read_attrs

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "conv_seconds")


def load_store(path, expected: dict):
    """(features float32, labels, attrs) of a store whose provenance matches `expected`."""
    import h5py

    attrs = read_attrs(path)
    check_fields(path, attrs, expected)
    with h5py.File(path, "r") as handle:
        return handle["features"][:].astype(np.float32), handle["labels"][:], attrs


class CachedEpochs:
    """Head epoch n -> cached epoch n mod K (features already in manifest order).

    extraction_seconds: what computing the K stores took, from their ``seconds`` attributes.
    """

    def __init__(self, store_paths, manifest_paths, expected: dict):
        self.epochs = []
        self.extraction_seconds = 0.0
        weights = None
        for epoch, (store, manifest) in enumerate(zip(store_paths, manifest_paths)):
            want = dict(expected, epoch=epoch, manifest_sha256=sha256_file(manifest))
            if weights is not None:
                want["weights_sha256"] = weights
            x, y, attrs = load_store(store, want)
            weights = attrs["weights_sha256"]
            self.extraction_seconds += float(attrs.get("seconds", 0.0))
            self.epochs.append((x, y))

    def __call__(self, n: int):
        x, y = self.epochs[n % len(self.epochs)]
        return x, y, 0.0


class ShuffledStore:
    """Head epoch n -> the store's rows in the shuffle order drawn for (seed, n)."""

    def __init__(self, path, expected: dict, seed: int):
        self.x, self.y, attrs = load_store(path, expected)
        self.extraction_seconds = float(attrs.get("seconds", 0.0))
        self.seed = seed

    def __call__(self, n: int):
        order, _ = draw_params(AugmentConfig(), len(self.y), self.seed, n)
        return self.x[order], self.y[order], 0.0


class ConvOnTheFly:
    """Head epoch n -> the conv base run on augmented images of the rows ``manifest_for(n)``."""

    def __init__(self, manifest_for, feature_fn, image_size, batch_size: int, resampling: Resampling,
                 dtype: str, resize: str = "stretch"):
        self.manifest_for = manifest_for
        self.feature_fn = feature_fn
        self.image_size = image_size
        self.batch_size = batch_size
        self.resampling = resampling
        self.dtype = dtype
        self.resize = resize

    def __call__(self, n: int):
        table = self.manifest_for(n)
        start = time.perf_counter()
        x = compute_features(table["path"].tolist(), params_array(table), self.feature_fn,
                             self.image_size, self.batch_size, self.resampling, dtype=self.dtype,
                             resize=self.resize)
        seconds = time.perf_counter() - start
        return x.astype(np.float32), table["label_index"].to_numpy(), seconds


def replay_manifests(manifest_paths):
    """manifest_for(n): the manifest of cached epoch n mod K, read from disk once."""
    tables = [read_manifest(p) for p in manifest_paths]
    return lambda n: tables[n % len(tables)]


def fresh_manifests(train_rows: pd.DataFrame, aug: AugmentConfig, seed: int):
    """manifest_for(n): numbers drawn for head epoch n itself, never repeating."""
    return lambda n: build_manifest(train_rows, aug, seed, n)


class EpochStream:
    """All head epochs as one stream of batches: epoch n's n_samples rows of source(n), in order.

    One stream (rather than a dataset restarted every epoch) means no epoch's first batches can
    be fetched before the previous epoch has ended.
    """

    def __init__(self, source, n_samples: int, batch_size: int, epochs: int):
        self.source, self.n_samples, self.batch_size, self.epochs = source, n_samples, batch_size, epochs
        self.conv_seconds: dict[int, float] = {}
        self.requested: list[int] = []

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n_samples // self.batch_size)

    def __iter__(self):
        for n in range(self.epochs):
            x, y, self.conv_seconds[n] = self.source(n)
            self.requested.append(n)
            if len(y) != self.n_samples:
                raise ValueError(f"head epoch {n}: {len(y)} training samples, expected {self.n_samples}")
            for start in range(0, self.n_samples, self.batch_size):
                yield x[start:start + self.batch_size], y[start:start + self.batch_size]

    def dataset(self, feature_shape):
        import tensorflow as tf

        signature = (tf.TensorSpec((None, *feature_shape), tf.float32), tf.TensorSpec((None,), tf.int64))
        return tf.data.Dataset.from_generator(self.__iter__, output_signature=signature)


def train_head(source, n_samples: int, feature_shape, n_classes: int, val_x, val_y, cfg: HeadConfig,
               seed: int, label: str = "train"):
    """Train a new head for cfg.epochs head epochs in one ``fit``; returns (model, metrics DataFrame).

    source(n) -> (x, y, conv_seconds): the n_samples training features of head epoch n, in the
    order they are fed (no further shuffling). It is called once per head epoch, in order.
    """
    import keras

    model = build_head(feature_shape, n_classes, cfg, seed)
    data = EpochStream(source, n_samples, cfg.batch_size, cfg.epochs)
    rows = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.start
            row = {"epoch": epoch, "loss": logs["loss"], "accuracy": logs["accuracy"],
                   "val_loss": logs["val_loss"], "val_accuracy": logs["val_accuracy"],
                   "seconds": seconds, "conv_seconds": data.conv_seconds.get(epoch, 0.0)}
            rows.append({k: float(v) if k != "epoch" else int(v) for k, v in row.items()})
            log.info("%s: epoch %d/%d loss %.4f accuracy %.3f val_loss %.4f val_accuracy %.3f (%.2f s)",
                     label, epoch + 1, cfg.epochs, row["loss"], row["accuracy"], row["val_loss"],
                     row["val_accuracy"], seconds)

    model.fit(data.dataset(feature_shape), epochs=cfg.epochs, steps_per_epoch=data.steps_per_epoch,
              shuffle=False, validation_data=(val_x, val_y),
              validation_batch_size=max(cfg.batch_size, 256), callbacks=[Record()], verbose=0)
    if data.requested != list(range(cfg.epochs)):
        raise RuntimeError(f"{label}: head epochs were fed out of order: {data.requested}")
    return model, pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
