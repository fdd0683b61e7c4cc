"""Merging stores: the shards of one epoch into its store, and K epoch stores into one view.

Every merge reads its parts through :func:`check_parts`: the fields that may differ between parts
are named, every other provenance field must agree.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from augcache.core.atomic import atomic_path
from augcache.core.provenance import ProvenanceError, check_fields, sha256_file
from augcache.store.features import QUANTISED_DATASETS, FeatureWriter, read_attrs
from augcache.store.quantise import QUANTISED, channels, stored_row_bytes
from augcache.store.writer import STRING_DTYPE

# Fields that differ between the epochs of one cache; every other field must agree.
# "device" (where the features were computed) is information only: epochs made on different
# devices merge.
PER_EPOCH_FIELDS = ("epoch", "manifest_sha256", "n_samples", "seconds", "features_sha256",
                    "features_constant", "device")
# Fields that differ between the shards of one epoch.
PER_SHARD_FIELDS = ("shard", "row_start", "row_stop", "n_samples", "seconds", "features_sha256",
                    "features_constant", "device")
SHARD_FIELDS = ("shard", "shards", "row_start", "row_stop")


def check_parts(paths, varying: tuple, fields_of, read=read_attrs) -> tuple[dict, list[dict]]:
    """(shared fields, attributes of each store) of the stores one merge reads (with `read`, a
    reader of the store kind's attributes), each checked the same way: every field outside
    `varying` equal to the first store's, no field the first lacks, and the fields
    ``fields_of(i, attrs of the stores before)`` expects of store i."""
    first = read(paths[0])
    shared = {k: v for k, v in first.items() if k not in varying}
    parts = []
    for i, path in enumerate(paths):
        attrs = first if i == 0 else read(path)
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
