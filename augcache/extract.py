"""Feature extraction: decode, augment with given parameters, run the frozen base, write a store."""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from augcache.augment import Resampling, augment
from augcache.conv_base import feature_shape
from augcache.images import load_image
from augcache.store import FeatureWriter

log = logging.getLogger(__name__)


def decode_workers() -> int:
    """Parallel image decodes: one per CPU this process may use.

    Decoding runs Python (Pillow) under tf.data; letting tf.data autotune the parallelism starts
    more decodes than cores and starves the conv base on a CPU-only machine.
    """
    return max(1, len(os.sched_getaffinity(0)))


def augmented_batches(paths, params: np.ndarray, image_size, batch_size: int, resampling: Resampling,
                      resize: str = "stretch"):
    """tf.data pipeline of augmented image batches, in the given order.

    paths: n file paths; params: (n, 10) augmentation parameters, one row per path.
    Yields (B, H, W, 3) float32 batches in [0, 255]; decoding runs in parallel, order is kept.
    """
    import tensorflow as tf

    size = tuple(int(s) for s in image_size)
    data = tf.data.Dataset.from_tensor_slices((list(map(str, paths)), params.astype(np.float32)))
    data = data.map(
        lambda path, row: (load_image(path, size, resize), row),
        num_parallel_calls=decode_workers(),
        deterministic=True,
    )
    data = data.batch(batch_size)
    data = data.map(
        lambda images, rows: augment(images, rows, resampling),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return data.prefetch(tf.data.AUTOTUNE)


class Progress:
    """Log 'done/total, rate, eta' at most every `every` seconds, and once at the end."""

    def __init__(self, total: int, label: str, every: float = 5.0):
        self.total, self.label, self.every = total, label, every
        self.start = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every and done < self.total:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        log.info(
            "%s: %d/%d images (%.0f%%), %.1f img/s, %.0f s elapsed, eta %.0f s",
            self.label, done, self.total, 100.0 * done / max(self.total, 1), rate, elapsed, eta,
        )


def feature_batches(paths, params: np.ndarray, feature_fn, image_size, batch_size: int,
                    resampling: Resampling = Resampling(), resize: str = "stretch"):
    """Yield the features of every (path, params) row, batch by batch, in order, as numpy arrays."""
    for images in augmented_batches(paths, params, image_size, batch_size, resampling, resize):
        yield feature_fn(images).numpy()


def compute_features(paths, params: np.ndarray, feature_fn, image_size, batch_size: int,
                     resampling: Resampling = Resampling(), dtype: str = "float32",
                     resize: str = "stretch") -> np.ndarray:
    """All features of :func:`feature_batches` in one (n, *feature_shape) array of `dtype`."""
    shape = feature_shape(feature_fn)
    out = np.empty((len(paths), *shape), dtype=dtype)
    done = 0
    for features in feature_batches(paths, params, feature_fn, image_size, batch_size, resampling, resize):
        out[done:done + len(features)] = features
        done += len(features)
    return out


def extract_to_store(
    out_path,
    paths,
    labels,
    sample_ids,
    params: np.ndarray,
    feature_fn,
    image_size,
    batch_size: int,
    dtype: str,
    attrs: dict,
    resampling: Resampling = Resampling(),
    compression=None,
    label: str = "extract",
    resize: str = "stretch",
) -> None:
    """Compute features of every (path, params) row, in order, into a store at out_path.

    feature_fn: compiled ``images -> features`` (see ``conv_base.feature_function``). The store's
    ``seconds`` attribute records the wall time of the extraction.
    """
    n = len(paths)
    labels = np.asarray(labels, dtype=np.int64)
    sample_ids = list(sample_ids)
    shape = feature_shape(feature_fn)
    progress = Progress(n, label)
    log.info("%s: %d images, batch size %d, features %s %s -> %s", label, n, batch_size,
             shape, dtype, out_path)
    with FeatureWriter(out_path, n, shape, dtype, attrs, compression) as writer:
        done = 0
        batches = feature_batches(paths, params, feature_fn, image_size, batch_size, resampling, resize) \
            if n else ()
        for features in batches:
            stop = done + len(features)
            writer.write(features, labels[done:stop], sample_ids[done:stop])
            done = stop
            progress.update(done)
        writer.attrs_at_close["seconds"] = time.perf_counter() - progress.start
