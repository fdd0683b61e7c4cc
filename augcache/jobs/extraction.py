"""Extraction jobs: one epoch's (or the validation set's) features, with the provenance that made them,
and the base check that runs before any of them."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from augcache.augmentation.manifest import AugmentConfig, identity_manifest, manifest_rows, read_manifest
from augcache.augmentation.params import Resampling
from augcache.base.conv_base import BaseSpec, build_bottom, feature_function, split_shares
from augcache.base.extract import compute_features, extract_to_store
from augcache.base.store_fields import CacheConfig, expected_provenance
from augcache.core import backend
from augcache.core.provenance import sha256_file, versions
from augcache.data.folds import labelled_rows
from augcache.data.pixels import Pixels
from augcache.store.features import NO_EPOCH
from augcache.store.quantise import as_stored, stored_row_bytes

log = logging.getLogger(__name__)


SPREAD_SAMPLE = 32


def feature_spread_problem(features: np.ndarray, dtype: str) -> str | None:
    """What makes features useless for training a head, or None: not finite, equal for every
    image, or lost when stored as `dtype` (constant after the cast, or most non-zero values
    flushed to zero). features: (n, ...) float32 of n >= 2 different images."""
    x = features.reshape(len(features), -1).astype(np.float32)
    if not np.isfinite(x).all():
        return "not finite (NaN or infinity)"
    largest = float(np.abs(x).max()) if x.size else 0.0
    if len(x) < 2 or float((x.max(axis=0) - x.min(axis=0)).max()) == 0.0:
        return f"the same for every image (largest |feature| {largest:.3g})"
    stored = as_stored(x, dtype)
    if float((stored.max(axis=0) - stored.min(axis=0)).max()) == 0.0:
        return f"the same for every image once stored as {dtype} (largest |feature| {largest:.3g})"
    nonzero = x != 0
    flushed = float(np.mean(stored[nonzero] == 0)) if nonzero.any() else 0.0
    if flushed > 0.5:
        return (f"mostly lost when stored as {dtype}: {flushed:.0%} of the non-zero values become 0 "
                f"(largest |feature| {largest:.3g})")
    return None


def check_feature_spread(spec: BaseSpec, model, preprocess, pixels, index: pd.DataFrame, dtype: str) -> None:
    """Run the base on up to SPREAD_SAMPLE training images (unaugmented) and raise ValueError, with
    what to do, when their features are useless (see :func:`feature_spread_problem`)."""
    rows = identity_manifest(index[index["split"] == "train"]).iloc[:SPREAD_SAMPLE]
    features = compute_features(rows, pixels, feature_function(model, preprocess, spec.image_size),
                                spec.image_size, batch_size=len(rows) or 1)
    problem = feature_spread_problem(features, dtype)
    if problem:
        raise ValueError(
            f"conv_base: the features of {spec.architecture} (weights {spec.weights}) on {len(rows)} "
            f"training images are {problem}; a head cannot learn from them. Use pretrained weights "
            "(conv_base.weights: imagenet or a weights file), cache.dtype: float32, or another "
            "conv_base.layer"
        )
    spread = features.reshape(len(features), -1).std(axis=0).mean()
    log.info("conv base features on %d training images: mean std across images %.3g, largest |value| "
             "%.3g", len(rows), spread, np.abs(features).max())


def check_base(spec: BaseSpec, out_path, pixels=None, index: pd.DataFrame | None = None,
                  dtype: str = "float32") -> dict:
    """Build the base once (so a bad weights file fails here, before any extraction job), check
    that its features on training images can be learnt from when `pixels` and `index` are given
    (see :func:`check_feature_spread`), and write what it is as JSON: provenance fields, feature
    shape, parameter count."""
    from augcache.core.atomic import write_json

    model, bottom, preprocess = build_bottom(spec)
    shape = tuple(int(d) for d in bottom.output.shape[1:])
    if pixels is not None and index is not None:
        check_feature_spread(spec, bottom, preprocess, pixels, index, dtype)
    info = dict(expected_provenance(spec, model, None, CacheConfig(), bottom),
                feature_shape=list(shape), parameters=int(model.count_params()),
                bytes_per_sample_epoch=stored_row_bytes(shape, dtype), storage_dtype=dtype)
    info.pop("augmentation")
    info.pop("dtype")
    info.pop("deterministic_ops")
    info.pop("keras_backend")
    if spec.split_at:
        info.update(split_shares(model, bottom), top_parameters=int(model.count_params() - bottom.count_params()))
    write_json(out_path, info)
    cached = f"activations at {spec.split_at}" if spec.split_at else "features"
    log.info("conv base %s: %s %s, %d parameters, weights sha256 %s; %d bytes per sample-epoch as %s",
             spec.architecture, cached, shape, info["parameters"], info["weights_sha256"],
             info["bytes_per_sample_epoch"], dtype)
    if spec.split_at:
        log.info("split at %s: the bottom holds %.1f%% of the base's forward FLOPs and %.1f%% of its parameters",
                 spec.split_at, 100 * info["bottom_flops_share"], 100 * info["bottom_parameter_share"])
    return info


def manifest_text_sha256(table: pd.DataFrame) -> str:
    """sha256 of a manifest table as :func:`augcache.augmentation.manifest.write_manifest` would write it."""
    import hashlib

    from augcache.core.atomic import csv_text

    return hashlib.sha256(csv_text(table).encode()).hexdigest()


def _extract(out_path, table, spec, aug, cache, pixels, attrs, label, built=None) -> tuple:
    """Extract into a store; returns (model, bottom, preprocess) of the base, built unless given."""
    if built is None:
        backend.configure(cache.threads, cache.deterministic_ops)
        built = build_bottom(spec)
    model, bottom, preprocess = built
    fields = expected_provenance(spec, model, aug, cache, bottom)
    fields.update(pixels.provenance())
    fields["device"] = backend.device_description()
    fields.update(attrs)
    fields.update(versions())
    extract_to_store(
        out_path,
        table,
        pixels,
        feature_fn=feature_function(bottom, preprocess, spec.image_size),
        image_size=spec.image_size,
        batch_size=cache.batch_size,
        dtype=cache.dtype,
        attrs=fields,
        resampling=aug.resampling if aug is not None else Resampling(),
        compression=cache.compression,
        label=label,
    )
    return built


def shard_rows(n: int, batch_size: int, shards: int, shard: int) -> tuple[int, int]:
    """Rows [start, stop) of one of `shards` shards of an n-row epoch.

    Shards are cut between whole batches of batch_size rows, so every forward pass sees the same
    images as in an unsharded extraction; shards past the last batch are empty.
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of 0..{shards - 1}")
    batches = -(-n // batch_size)
    per_shard = -(-batches // shards)
    start = min(n, shard * per_shard * batch_size)
    return start, min(n, start + per_shard * batch_size)


def extract_epoch(manifest_path, out_path, epoch: int, spec: BaseSpec, aug: AugmentConfig,
                  cache: CacheConfig, pixels: Pixels, shard: int = 0, shards: int = 1,
                  built: tuple | None = None) -> tuple:
    """Features of one epoch's augmented training images, in manifest order. Returns the built base
    (model, bottom, preprocess), which `built` passes to the next epoch of the same job.

    pixels: where the images' pixels come from (see :class:`augcache.data.pixels.Pixels`). With shards > 1, only the rows of shard `shard` (see :func:`shard_rows`); the store then also
    records ``shard``, ``shards``, ``row_start`` and ``row_stop`` for :func:`augcache.store.merge.merge_shards`.
    """
    attrs = {"split": "train", "epoch": int(epoch), "manifest_sha256": sha256_file(manifest_path)}
    label = f"epoch {epoch}"
    if shards == 1:
        table = read_manifest(manifest_path)
    else:
        # only the shard's rows are parsed and held (the hash above covers the whole manifest)
        start, stop = shard_rows(manifest_rows(manifest_path), cache.batch_size, shards, shard)
        table = read_manifest(manifest_path, (start, stop))
        attrs.update(shard=int(shard), shards=int(shards), row_start=start, row_stop=stop)
        label = f"epoch {epoch} shard {shard + 1}/{shards} (rows {start}-{stop})"
    return _extract(out_path, table, spec, aug, cache, pixels, attrs, label, built)


def extract_view(manifest_path, out_path, view: int, spec: BaseSpec, aug: AugmentConfig,
                 cache: CacheConfig, pixels: Pixels, split: str = "val") -> None:
    """Features of one test-time view of the validation images (its manifest's numbers, in
    sample_id order: row for row the validation store's); split "train" with eval.folds: of every
    labelled image, row for row the unaugmented store's."""
    table = read_manifest(manifest_path)
    attrs = {"split": split, "epoch": NO_EPOCH, "tta_view": int(view), "manifest_sha256": sha256_file(manifest_path)}
    _extract(out_path, table, spec, aug, cache, pixels, attrs, f"{split} view {view}")


def extract_unaugmented(index: pd.DataFrame, split: str, out_path, spec: BaseSpec,
                        cache: CacheConfig, pixels: Pixels, pooled: bool = False) -> None:
    """Features of one split's images as they are, in sample_id order; pooled (eval.folds): the
    training split's store holds every labelled image (train and val)."""
    rows = labelled_rows(index, pooled) if split == "train" else index[index["split"] == split]
    table = identity_manifest(rows)
    attrs = {"split": split, "epoch": NO_EPOCH, "manifest_sha256": manifest_text_sha256(table)}
    _extract(out_path, table, spec, None, cache, pixels, attrs, split)
