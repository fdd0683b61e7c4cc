"""``cache.dtype: uint8``: lossy 8-bit storage of features by a per-sample, per-channel affine map.

A sample's features of shape (..., C) (a conv map, or activations at a split) are stored as
uint8 ``q`` with, for each of its C channels, ``scale`` and ``offset`` (float32) such that
``features ≈ q * scale + offset``: offset is the channel's smallest value over the sample's
positions and scale spreads its range over 0..255. A vector of features is one group (C = 1).
Every sample is quantised on its own, so its stored values never depend on its batch mates,
shards and merges copy rows as they are, and replay reproduces a cached epoch exactly.
"""

from __future__ import annotations

import numpy as np

QUANTISED = "uint8"
LEVELS = 255


def channels(feature_shape) -> int:
    """Scale/offset pairs per sample: the last axis of a map, one for a vector."""
    return int(feature_shape[-1]) if len(feature_shape) >= 2 else 1


def stored_row_bytes(feature_shape, dtype: str) -> int:
    """Bytes one sample takes in a store of `dtype` (uint8: its values plus scale and offset)."""
    values = int(np.prod(feature_shape)) * np.dtype(dtype).itemsize
    return values + (8 * channels(feature_shape) if np.dtype(dtype).name == QUANTISED else 0)


def _grouped(x: np.ndarray) -> np.ndarray:
    """(n, positions, channels) view of n samples."""
    shape = x.shape[1:]
    return x.reshape(len(x), -1, channels(shape))


def quantise(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q uint8 like features, scale (n, C) float32, offset (n, C) float32) of n samples."""
    x = _grouped(np.asarray(features, dtype=np.float32))
    offset = x.min(axis=1)
    scale = (x.max(axis=1) - offset) / np.float32(LEVELS)
    step = np.where(scale > 0, scale, np.float32(1.0))
    q = np.rint((x - offset[:, None, :]) / step[:, None, :])
    q = np.clip(q, 0, LEVELS).astype(np.uint8).reshape(np.shape(features))
    return q, scale.astype(np.float32), offset.astype(np.float32)


def dequantise(q: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """float32 features of uint8 values and their per-sample, per-channel scale and offset."""
    x = _grouped(np.asarray(q)).astype(np.float32)
    return (x * scale[:, None, :] + offset[:, None, :]).reshape(np.shape(q))


def as_stored(features: np.ndarray, dtype: str) -> np.ndarray:
    """float32 features as a store of `dtype` gives them back (rounded to float16, or quantised)."""
    if np.dtype(dtype).name == QUANTISED:
        return dequantise(*quantise(features))
    return np.asarray(features).astype(dtype).astype(np.float32)
