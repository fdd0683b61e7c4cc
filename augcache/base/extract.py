"""Feature extraction: pixels, augmented with given parameters, through the frozen base, into a store."""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pandas as pd

from augcache.augmentation.augment import augment
from augcache.augmentation.manifest import params_array
from augcache.augmentation.params import PARAM_COLUMNS, Resampling
from augcache.base.conv_base import feature_shape
from augcache.core import backend
from augcache.core.progress import Progress
from augcache.data.pixels import Pixels
from augcache.store.features import FeatureWriter

log = logging.getLogger(__name__)


def decode_workers() -> int:
    """Parallel image decodes: one per CPU this process may use.

    Decoding runs Python (Pillow) under tf.data; letting tf.data autotune the parallelism starts
    more decodes than cores and starves the conv base on a CPU-only machine.
    """
    return max(1, len(os.sched_getaffinity(0)))


def _unchanged(images):
    return images


def augmented_batches(table: pd.DataFrame, pixels: Pixels, image_size, batch_size: int,
                      resampling: Resampling = Resampling()):
    """Augmented image batches, in the table's row order: a tf.data pipeline under TensorFlow,
    a generator of arrays under the other backends.

    table: rows with ``sample_id``, ``path`` and the augmentation columns of a manifest.
    Yields (B, H, W, 3) float32 batches in [0, 255] at image_size; under TensorFlow reading or
    decoding runs ahead of the caller; order is kept.
    """
    if backend.name() != backend.TENSORFLOW:
        return _backend_batches(table, pixels, _unchanged, image_size, batch_size, resampling, "augment")
    tf = backend.tensorflow()

    size = tuple(int(s) for s in image_size)
    images = pixels.batches(table["sample_id"].tolist(), table["path"].tolist(), batch_size,
                            decode_workers())
    params = tf.data.Dataset.from_tensor_slices(params_array(table).astype(np.float32)).batch(batch_size)
    data = tf.data.Dataset.zip((images, params))
    data = data.map(
        lambda batch, rows: augment(tf.cast(batch, tf.float32), rows, resampling, size),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return data.prefetch(tf.data.AUTOTUNE)


def _augment_and_extract(feature_fn, pixel_size, image_size, resampling: Resampling):
    """One compiled step: uint8 pixels and their parameters -> features of the augmented images.

    Augmenting inside the conv base's graph (rather than in a tf.data stage beside it) keeps the
    two from competing for the same cores; the numbers are those of :func:`augmented_batches`.
    """
    tf = backend.tensorflow()

    size = tuple(int(s) for s in image_size)

    @tf.function(input_signature=[tf.TensorSpec((None, *pixel_size, 3), tf.uint8),
                                  tf.TensorSpec((None, len(PARAM_COLUMNS)), tf.float32)])
    def step(pixel_batch, rows):
        return feature_fn(augment(tf.cast(pixel_batch, tf.float32), rows, resampling, size))

    return step


def feature_batches(table: pd.DataFrame, pixels: Pixels, feature_fn, image_size, batch_size: int,
                    resampling: Resampling = Resampling()):
    """Yield the features of every row of the table, batch by batch, in order, as numpy arrays.

    Pixels are read (or decoded) ahead in the background; each batch is augmented and run
    through the base in one compiled step (a tf.function, or the backend's: see
    :mod:`augcache.core.backend`).
    """

    if backend.name() != backend.TENSORFLOW:
        yield from _backend_batches(table, pixels, feature_fn, image_size, batch_size, resampling,
                                    "augment_and_extract")
        return
    tf = backend.tensorflow()

    images = pixels.batches(table["sample_id"].tolist(), table["path"].tolist(), batch_size,
                            decode_workers())
    params = tf.data.Dataset.from_tensor_slices(params_array(table).astype(np.float32)).batch(batch_size)
    step = _augment_and_extract(feature_fn, pixels.size, image_size, resampling)
    for pixel_batch, rows in tf.data.Dataset.zip((images, params)).prefetch(2):
        yield step(pixel_batch, rows).numpy()


def _backend_batches(table, pixels: Pixels, feature_fn, image_size, batch_size: int,
                     resampling: Resampling, name: str):
    """Batches under a Keras backend other than TensorFlow: pixels (pixel store rows, or decoded
    files) read ahead in a thread, each batch augmented and passed through feature_fn in one
    compiled step (name: what the step is, for the compile cache)."""
    import queue
    import threading

    from keras import ops

    size = tuple(int(s) for s in image_size)
    params = params_array(table).astype(np.float32)
    step = backend.jax_jit(lambda pixel_batch, batch_params: feature_fn(
        augment(ops.cast(pixel_batch, "float32"), batch_params, resampling, size)),
        key=(name, id(feature_fn), resampling, size), keep=feature_fn)
    ahead: queue.Queue = queue.Queue(maxsize=2)

    def read():
        try:
            for batch in pixels.array_batches(table["sample_id"].tolist(), table["path"].tolist(), batch_size,
                                              decode_workers()):
                ahead.put(batch)
        except BaseException as err:  # raised again in the caller
            ahead.put(err)
        ahead.put(None)

    threading.Thread(target=read, daemon=True).start()
    done = 0
    while (batch := ahead.get()) is not None:
        if isinstance(batch, BaseException):
            raise batch
        yield ops.convert_to_numpy(step(batch, params[done:done + len(batch)]))
        done += len(batch)


def compute_features(table: pd.DataFrame, pixels: Pixels, feature_fn, image_size, batch_size: int,
                     resampling: Resampling = Resampling(), dtype: str = "float32") -> np.ndarray:
    """All features of :func:`feature_batches` in one (n, *feature_shape) array of `dtype`."""
    shape = feature_shape(feature_fn)
    out = np.empty((len(table), *shape), dtype=dtype)
    done = 0
    for features in feature_batches(table, pixels, feature_fn, image_size, batch_size, resampling):
        out[done:done + len(features)] = features
        done += len(features)
    return out


def extract_to_store(out_path, table: pd.DataFrame, pixels: Pixels, feature_fn, image_size,
                     batch_size: int, dtype: str, attrs: dict, resampling: Resampling = Resampling(),
                     compression=None, label: str = "extract") -> None:
    """Compute features of every row of a manifest table, in order, into a store at out_path.

    table: ``sample_id``, ``path``, ``label_index`` and the augmentation columns.
    feature_fn: compiled ``images -> features`` (see ``conv_base.feature_function``). The store's
    ``seconds`` attribute records the wall time of the extraction.
    """
    n = len(table)
    labels = table["label_index"].to_numpy(dtype=np.int64)
    sample_ids = table["sample_id"].tolist()
    shape = feature_shape(feature_fn)
    progress = Progress(n, label)
    log.info("%s: %d images, batch size %d, features %s %s -> %s; %s", label, n, batch_size,
             shape, dtype, out_path, pixels.describe())
    with FeatureWriter(out_path, n, shape, dtype, attrs, compression) as writer:
        done = 0
        batches = feature_batches(table, pixels, feature_fn, image_size, batch_size, resampling) if n else ()
        for features in batches:
            stop = done + len(features)
            writer.write(features, labels[done:stop], sample_ids[done:stop])
            done = stop
            progress.update(done)
        writer.attrs_at_close["seconds"] = time.perf_counter() - progress.start
