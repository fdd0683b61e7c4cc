"""HDF5 feature stores: atomic writing, provenance attributes, checked reading, and epoch merging.

An epoch store holds ``features`` (n, *feature_shape), ``labels`` (n,) int64 and
``sample_ids`` (n,) UTF-8 strings, in manifest order, plus provenance attributes. The attribute
``complete`` is set last, and the file only gets its final name after it is closed, so a
killed writer leaves at most a ``.tmp`` file that no reader opens.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from augcache.atomic import Replacement, atomic_path
from augcache.provenance import ProvenanceError, check_fields, sha256_file
from augcache.quantise import QUANTISED, channels, dequantise, quantise, stored_row_bytes
from augcache.reservation import DiskFullError, check_room, disk_full, is_disk_full, mib, reserve, trim

__all__ = ["DiskFullError", "mib"]  # re-exported: the stores' disk errors and sizes

FORMAT = "augcache-features/1"
# Fields that differ between the epochs of one cache; every other field must agree.
# "device" (where the features were computed) is information only: epochs made on different
# devices merge.
PER_EPOCH_FIELDS = ("epoch", "manifest_sha256", "n_samples", "seconds", "features_sha256",
                    "features_constant", "device")
# Fields that differ between the shards of one epoch.
PER_SHARD_FIELDS = ("shard", "row_start", "row_stop", "n_samples", "seconds", "features_sha256",
                    "features_constant", "device")
SHARD_FIELDS = ("shard", "shards", "row_start", "row_stop")
STRING_DTYPE = h5py.string_dtype("utf-8")
log = logging.getLogger(__name__)
RECOMPUTE = "delete it and rerun the workflow to compute it again"


class StoreError(ProvenanceError):
    """A store is unreadable, damaged or unfinished, or not a feature store at all."""


def _damage(path, err: OSError) -> StoreError:
    truncated = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", str(err))
    if truncated:
        have, want = truncated.groups()
        return StoreError(f"{path}: file is truncated ({have} of {want} bytes); {RECOMPUTE}")
    if "filter returned failure" in str(err) or "checksum" in str(err):
        return StoreError(f"{path}: damaged: stored bytes fail their checksum ({err}); {RECOMPUTE}")
    return StoreError(f"{path}: not a readable HDF5 file or damaged ({err}); {RECOMPUTE}")


@contextmanager
def reading(path):
    """Turn an HDF5 error raised while reading `path` into a StoreError naming it."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as err:
        raise _damage(path, err) from err


def chunk_rows(row_bytes: int, n: int, target_bytes: int = 1 << 20) -> int:
    """Rows per HDF5 chunk of a feature store of n rows of row_bytes each: about target_bytes, at
    most 4096 rows and at most n (1 for an empty store)."""
    return min(n, int(max(1, min(4096, target_bytes // max(1, row_bytes))))) or 1


class StoreWriter:
    """Write an HDF5 store under a temporary name; on success mark it complete and rename it.

    Use as a context manager; an exception inside the block removes the temporary file, as does
    the next writer of the same path for one left by a killed process. The file's largest size is
    reserved on disk before any row is written, and trimmed after closing; a store that does not
    fit raises DiskFullError at once. Subclasses create their datasets (``_create``), set their own
    attributes (``_describe``), bound the file's size (``_size_bound``) and write rows
    (``_write_rows``).
    """

    def __init__(self, path, n: int, attrs: dict):
        self.path = Path(path)
        self.n = n
        self.attrs = dict(attrs)
        self.written = 0
        self.attrs_at_close: dict = {}
        self.closing = False
        self.file = None
        self.replacement = None

    def _remove_stale(self, own) -> None:
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            if stale != own:
                log.info("removing %s, left by a writer that did not finish", stale)
                stale.unlink(missing_ok=True)

    def _size_bound(self) -> int:
        raise NotImplementedError

    def _create(self) -> None:
        raise NotImplementedError

    def _describe(self) -> None:
        """Attributes the writer itself sets (format, shapes), after the given ones."""

    def _write_rows(self, start: int, stop: int, *columns) -> None:
        raise NotImplementedError

    @property
    def tmp(self):
        return self.replacement.tmp

    def _full_while_writing(self) -> DiskFullError:
        return disk_full(self.path, f"after {self.written} of {self.n} rows, the partial file was removed")

    def _discard(self) -> None:
        """Close (ignoring the errors of a broken file) and remove the temporary file."""
        try:
            # closing again after a failed close crashes HDF5
            if self.file is not None and self.file.id.valid and not self.closing:
                self.file.close()
        except Exception as err:  # the file is being thrown away
            log.debug("closing %s: %s", self.tmp, err)
        self.replacement.discard()

    def __enter__(self):
        self.replacement = Replacement(self.path)
        self._remove_stale(self.tmp)
        needed = self._size_bound()
        check_room(self.path, needed)
        try:
            self.file = h5py.File(self.tmp, "w")
            self._create()
            for key, value in self.attrs.items():
                self.file.attrs[key] = value
            self._describe()
            self.file.flush()
            reserve(self.tmp, needed, self.path)
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, *columns) -> None:
        """Append the next rows: one array or list per dataset, of equal lengths."""
        start, stop = self.written, self.written + len(columns[0])
        if stop > self.n:
            raise ValueError(f"{self.path}: more than the {self.n} declared rows written")
        try:
            self._write_rows(start, stop, *columns)
        except Exception as err:
            if is_disk_full(err):
                raise self._full_while_writing() from err
            raise
        self.written = stop

    def _finish(self) -> None:
        """Last changes before the completion mark (e.g. shrink to the rows written)."""
        if self.written != self.n:
            raise ValueError(f"{self.path}: {self.written} of {self.n} rows written")

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._discard()
            return False
        try:
            self._finish()
            for key, value in self.attrs_at_close.items():
                self.file.attrs[key] = value
            self.file.attrs["complete"] = True
            self.closing = True
            self.file.close()
            trim(self.tmp)
            self.replacement.commit()
        except BaseException as err:
            self._discard()
            if is_disk_full(err):
                raise self._full_while_writing() from err
            raise
        return False


class FeatureWriter(StoreWriter):
    """A feature store: ``features`` (n, *feature_shape) of dtype, ``labels``, ``sample_ids``;
    with dtype uint8 also ``scale`` and ``offset`` (n, C) float32 (see :mod:`augcache.quantise`).

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


def attr_value(value):
    """An HDF5 attribute as a plain Python value (str, int, float, bool)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


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


def complete_attrs(path, file_format: str, datasets, kind: str) -> dict:
    """Attributes of a finished HDF5 store of `file_format` holding `datasets`, as plain values;
    StoreError names the file and what is wrong (unreadable, truncated, another format, no
    completion mark, a dataset missing)."""
    path = Path(path)
    with reading(path), h5py.File(path, "r") as handle:
        attrs = {key: attr_value(value) for key, value in handle.attrs.items()}
        missing = [name for name in datasets if name not in handle]
    if attrs.get("format") != file_format:
        raise StoreError(f"{path}: not an augcache {kind} (format {attrs.get('format')!r})")
    if not attrs.get("complete"):
        raise StoreError(f"{path}: {'store' if kind == 'feature store' else kind} is incomplete "
                         f"(its writer did not finish); {RECOMPUTE}")
    if missing:
        raise StoreError(f"{path}: dataset(s) {', '.join(missing)} missing; {RECOMPUTE}")
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


def check_parts(paths, varying: tuple, fields_of) -> tuple[dict, list[dict]]:
    """(shared fields, attributes of each store) of the stores one merge reads, each checked the
    same way: every field outside `varying` equal to the first store's, no field the first lacks,
    and the fields ``fields_of(i, attrs of the stores before)`` expects of store i."""
    first = read_attrs(paths[0])
    shared = {k: v for k, v in first.items() if k not in varying}
    parts = []
    for i, path in enumerate(paths):
        attrs = first if i == 0 else read_attrs(path)
        foreign = [key for key in attrs if key not in shared and key not in varying]
        if foreign:
            raise ProvenanceError(f"{path}: provenance field '{foreign[0]}' is not in {paths[0]}")
        check_fields(path, attrs, dict(shared, **fields_of(i, parts)))
        parts.append(attrs)
    return shared, parts


def merge_shards(shard_paths, out_path, block_rows: int = 4096) -> dict:
    """One epoch store from the stores of its shards, checked to be the same epoch's consecutive rows.

    The result is the store one unsharded job would have written (same datasets, chunks and
    provenance), except that ``seconds`` is the sum of the shards' seconds. Rows are copied
    block_rows at a time.
    """
    shard_paths = [Path(p) for p in shard_paths]
    if not shard_paths:
        raise ValueError("merge_shards needs at least one shard store")

    def shard_fields(i, checked):
        row_start = int(checked[-1]["row_stop"]) if checked else 0
        return {"shard": i, "shards": len(shard_paths), "row_start": row_start}

    shared, parts = check_parts(shard_paths, PER_SHARD_FIELDS, shard_fields)
    first = parts[0]
    seconds = sum(float(attrs.get("seconds", 0.0)) for attrs in parts)
    n = int(parts[-1]["row_stop"])
    attrs = {k: v for k, v in shared.items() if k not in SHARD_FIELDS + ("format", "complete", "dtype",
                                                                          "n_samples", "feature_shape")}
    feature_shape = tuple(json.loads(first["feature_shape"]))
    with FeatureWriter(out_path, n, feature_shape, first["dtype"], attrs, _compression(shard_paths[0])) \
            as writer:
        for path in shard_paths:
            with h5py.File(path, "r") as handle:
                rows = len(handle["labels"])
                for start in range(0, rows, block_rows):
                    stop = min(rows, start + block_rows)
                    rest = (handle["labels"][start:stop], [s.decode() for s in handle["sample_ids"][start:stop]])
                    if writer.quantised:
                        writer.write_quantised(*(handle[name][start:stop] for name in QUANTISED_DATASETS), *rest)
                    else:
                        writer.write(handle["features"][start:stop], *rest)
        writer.attrs_at_close["seconds"] = seconds
    return dict(attrs, n_samples=n, shards=len(shard_paths))


def _compression(path):
    with h5py.File(path, "r") as handle:
        return handle["features"].compression


def merge_epochs(epoch_paths, manifest_paths, out_path) -> dict:
    """One store over K epoch stores, checked to share provenance.

    ``features`` becomes a virtual dataset (K, n, *feature_shape) over the epoch files (paths
    stored relative to the merged file, so the folder can move); ``labels`` and ``sample_ids``
    (K, n) are copied. Returns the merged attributes, including ``bytes_per_sample_epoch``.
    """
    epoch_paths = [Path(p) for p in epoch_paths]
    out_path = Path(out_path)
    if not epoch_paths:
        raise ValueError("merge needs at least one epoch store")
    manifest_paths = list(manifest_paths)
    if len(manifest_paths) != len(epoch_paths):
        raise ValueError(f"{out_path}: {len(epoch_paths)} epoch stores but {len(manifest_paths)} manifests")
    manifest_hashes = [sha256_file(m) for m in manifest_paths]

    def epoch_fields(epoch, checked):
        same_rows = {"n_samples": checked[0]["n_samples"]} if checked else {}
        return {"epoch": epoch, "manifest_sha256": manifest_hashes[epoch], **same_rows}

    shared, parts = check_parts(epoch_paths, PER_EPOCH_FIELDS, epoch_fields)
    first = parts[0]
    seconds = sum(float(attrs.get("seconds", 0.0)) for attrs in parts)
    features_hashes = [attrs.get("features_sha256") for attrs in parts]

    n = first["n_samples"]
    k = len(epoch_paths)
    feature_shape = tuple(json.loads(first["feature_shape"]))
    dtype = np.dtype(first["dtype"])
    layout = h5py.VirtualLayout(shape=(k, n, *feature_shape), dtype=dtype)
    labels = np.empty((k, n), dtype=np.int64)
    sample_ids = []
    disk_bytes = 0
    pairs = (n, channels(feature_shape))
    extra = {name: h5py.VirtualLayout(shape=(k, *pairs), dtype=np.float32)
             for name in QUANTISED_DATASETS[1:]} if dtype.name == QUANTISED else {}
    for e, path in enumerate(epoch_paths):
        relative = os.path.relpath(path.resolve(), out_path.resolve().parent)
        layout[e] = h5py.VirtualSource(relative, "features", shape=(n, *feature_shape))
        for name, extra_layout in extra.items():
            extra_layout[e] = h5py.VirtualSource(relative, name, shape=pairs)
        with h5py.File(path, "r") as handle:
            labels[e] = handle["labels"][:]
            sample_ids.append(handle["sample_ids"][:])
        disk_bytes += path.stat().st_size

    attrs = dict(shared)
    attrs.update(
        epochs=k,
        epoch_files=json.dumps([os.path.relpath(p.resolve(), out_path.resolve().parent) for p in epoch_paths]),
        manifest_sha256s=json.dumps(manifest_hashes),
        features_sha256s=json.dumps(features_hashes),
        bytes_per_sample_epoch=stored_row_bytes(feature_shape, dtype.name),
        disk_bytes_per_sample_epoch=disk_bytes / (k * n),
        n_samples=n,
        seconds=seconds,
    )
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as handle:
        # a source that goes missing reads as NaN, which no feature is, never as zeros (uint8
        # values cannot be NaN, but their scale and offset are, so their features read as NaN)
        handle.create_virtual_dataset("features", layout, fillvalue=0 if extra else np.nan)
        for name, extra_layout in extra.items():
            handle.create_virtual_dataset(name, extra_layout, fillvalue=np.nan)
        handle.create_dataset("labels", data=labels)
        handle.create_dataset("sample_ids", data=np.stack(sample_ids), dtype=STRING_DTYPE)
        for key, value in attrs.items():
            handle.attrs[key] = value
        handle.attrs["complete"] = True
    return attrs
