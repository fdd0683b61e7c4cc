"""Feature stores: the conv features of one epoch (or of the validation or unaugmented images).

An epoch store holds ``features`` (n, *feature_shape), ``labels`` (n,) int64 and
``sample_ids`` (n,) UTF-8 strings, in manifest order, plus provenance attributes (given by
the writer's caller, :mod:`augcache.base.store_fields`; checked by every reader); a uint8 store also ``scale`` and ``offset`` (n, C).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from augcache.core.provenance import check_fields
from augcache.store.quantise import QUANTISED, channels, dequantise, quantise, stored_row_bytes
from augcache.store.writer import STRING_DTYPE, StoreError, StoreWriter, chunk_rows, complete_attrs, reading

FORMAT = "augcache-features/1"
# the epoch attribute of a store of no cached epoch (the validation and unaugmented stores, a test-time view)
NO_EPOCH = -1


class FeatureWriter(StoreWriter):
    """A feature store: ``features`` (n, *feature_shape) of dtype, ``labels``, ``sample_ids``;
    with dtype uint8 also ``scale`` and ``offset`` (n, C) float32 (see :mod:`augcache.store.quantise`).

    ``write(features, labels, sample_ids)`` appends rows in manifest order (float features, which
    a uint8 store quantises; ``write_quantised`` copies rows already quantised). The reserved size
    is that of the uncompressed features.
    """

    def __init__(self, path, n: int, feature_shape, dtype: str, attrs: dict, compression=None):
        super().__init__(path, n, attrs)
        self.feature_shape = tuple(int(d) for d in feature_shape)
        self.dtype = np.dtype(dtype)
        self.compression = compression
        self.digest = hashlib.sha256()
        self.first_row = None
        self.constant = True

    def _size_bound(self) -> int:
        """Bytes the finished file takes at most (uncompressed features, labels, ids, metadata)."""
        row = stored_row_bytes(self.feature_shape, self.dtype.name) + 8 + 64
        return int(self.n * row * 1.02) + (1 << 18)

    @property
    def quantised(self) -> bool:
        return self.dtype.name == QUANTISED

    def _create(self) -> None:
        rows = chunk_rows(int(np.prod(self.feature_shape)) * self.dtype.itemsize, self.n)
        # an empty store (a shard past the last batch) needs room to name a chunk shape
        empty = {"maxshape": (None, *self.feature_shape)} if self.n == 0 else {}
        # fletcher32: every chunk carries a checksum, so damaged bytes fail the read
        self.features = self.file.create_dataset(
            "features",
            shape=(self.n, *self.feature_shape),
            dtype=self.dtype,
            chunks=(rows, *self.feature_shape),
            compression=self.compression,
            fletcher32=True,
            **empty,
        )
        self.labels = self.file.create_dataset("labels", shape=(self.n,), dtype=np.int64,
                                               chunks=(max(1, min(self.n, 1 << 16)),), fletcher32=True,
                                               **({"maxshape": (None,)} if self.n == 0 else {}))
        self.sample_ids = self.file.create_dataset("sample_ids", shape=(self.n,), dtype=STRING_DTYPE)
        if self.quantised:
            pairs = (self.n, channels(self.feature_shape))
            self.scale, self.offset = (
                self.file.create_dataset(name, shape=pairs, dtype=np.float32, chunks=(rows, pairs[1]),
                                         fletcher32=True, **({"maxshape": (None, pairs[1])} if self.n == 0 else {}))
                for name in ("scale", "offset"))

    def write(self, features, labels, sample_ids) -> None:
        if self.quantised:
            super().write(*quantise(features), labels, sample_ids)
        else:
            super().write(features, labels, sample_ids)

    def write_quantised(self, q, scale, offset, labels, sample_ids) -> None:
        """Append rows of a uint8 store as they are stored (no second rounding)."""
        super().write(q, scale, offset, labels, sample_ids)

    def _describe(self) -> None:
        self.file.attrs["format"] = FORMAT
        self.file.attrs["dtype"] = self.dtype.name
        self.file.attrs["n_samples"] = self.n
        self.file.attrs["feature_shape"] = json.dumps(list(self.feature_shape))

    def _write_rows(self, start: int, stop: int, features, *columns) -> None:
        stored = np.ascontiguousarray(features, dtype=self.dtype)
        values = stored
        if self.quantised:
            scale, offset, labels, sample_ids = columns
            self.scale[start:stop] = scale
            self.offset[start:stop] = offset
            values = dequantise(stored, scale, offset)  # equal q of other scales are other values
        else:
            labels, sample_ids = columns
        self.features[start:stop] = stored
        self.labels[start:stop] = labels
        self.sample_ids[start:stop] = list(sample_ids)
        self.digest.update(stored.tobytes())
        if len(stored):
            if self.first_row is None:
                self.first_row = values[0].copy()
            self.constant = self.constant and bool(np.all(values == self.first_row))

    def _finish(self) -> None:
        super()._finish()
        # what the features are, so a merged store can tell its epoch files were not replaced
        self.file.attrs["features_sha256"] = self.digest.hexdigest()
        # every row equal: the base gives no information (refused by readers)
        self.file.attrs["features_constant"] = bool(self.n > 1 and self.constant)

    def _discard(self) -> None:
        self.features = self.labels = self.sample_ids = self.scale = self.offset = None
        super()._discard()


QUANTISED_DATASETS = ("features", "scale", "offset")


def read_rows(handle, rows=slice(None)) -> np.ndarray:
    """float32 features of a store's rows (a slice, or sorted row numbers), dequantised when the
    store is uint8."""
    x = handle["features"][rows]
    if "scale" in handle:
        return dequantise(x, handle["scale"][rows], handle["offset"][rows])
    return x.astype(np.float32)


def read_attrs(path) -> dict:
    """Provenance attributes of a store, as plain Python values.

    Raises StoreError for a file that is not a complete feature store: unreadable or truncated,
    of another format, without its completion mark, or missing a dataset.
    """
    path = Path(path)
    attrs = complete_attrs(path, FORMAT, ("features", "labels", "sample_ids"), "feature store")
    if attrs.get("features_constant"):
        raise StoreError(
            f"{path}: every sample has the same features, so nothing can be learnt from them: the conv "
            "base's outputs are constant or underflow the store's dtype. Use pretrained weights, "
            "cache.dtype: float32 or another conv_base.layer, then delete the store and rerun"
        )
    if "epoch_files" in attrs:
        _check_sources(path, attrs)
    return attrs


def _check_sources(path, attrs: dict) -> None:
    """A merged store's epoch files are there and are the ones it was merged from."""
    files = json.loads(attrs["epoch_files"])
    hashes = json.loads(attrs.get("features_sha256s", "null")) or [None] * len(files)
    for epoch, (relative, want) in enumerate(zip(files, hashes, strict=True)):
        source = Path(path).parent / relative
        if not source.exists():
            raise StoreError(
                f"{path}: the store of epoch {epoch}, {source}, is missing (its features would read as "
                "NaN); rerun the workflow to compute it and merge again"
            )
        found = read_attrs(source).get("features_sha256")
        if want is not None and found != want:
            raise StoreError(
                f"{path}: the store of epoch {epoch}, {source}, was replaced after the merge "
                f"(features_sha256 {_short_hash(found)}, merged {_short_hash(want)}); rerun the workflow "
                "to merge again"
            )


def _short_hash(value) -> str:
    return repr(value[:12] + "…") if isinstance(value, str) else repr(value)


def check_store(path, expected: dict) -> dict:
    """Read a store's attributes and check that each expected field has its expected value."""
    attrs = read_attrs(path)
    check_fields(path, attrs, expected)
    return attrs


def read_features(path):
    """(features float32, labels) of a store whose attributes were already checked."""
    import h5py

    with reading(path), h5py.File(path, "r") as handle:
        return read_rows(handle), handle["labels"][:]


def read_sample_ids(path) -> list[str]:
    """The sample id of each of a store's rows, in stored order."""
    import h5py

    with reading(path), h5py.File(path, "r") as handle:
        return [s.decode() if isinstance(s, bytes) else str(s) for s in handle["sample_ids"][:]]


def kept_rows(path, keep) -> np.ndarray | None:
    """The row numbers of a store that keep(its sample ids) marks, in stored order; None to keep all
    (keep None)."""
    return None if keep is None else np.flatnonzero(keep(read_sample_ids(path)))


def load_store(path, expected: dict):
    """(features float32, labels, attrs) of a store whose provenance matches `expected`."""
    attrs = check_store(path, expected)
    return (*read_features(path), attrs)


def row_bytes(attrs: dict) -> int:
    """Bytes of one sample's features once read as float32."""
    return int(np.prod(json.loads(attrs["feature_shape"]))) * 4
