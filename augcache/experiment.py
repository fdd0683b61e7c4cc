"""One training run of a mode: assemble its feature source, train the head, write its outputs."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from augcache.atomic import atomic_path
from augcache.augment import Resampling
from augcache.cache import CacheSettings, config_provenance, configure_tensorflow
from augcache.conv_base import BaseSpec, build_base, feature_function, weights_sha256
from augcache.dataset import class_names, read_index
from augcache.head import HeadConfig
from augcache.manifest import AugmentConfig
from augcache.provenance import ProvenanceError
from augcache.train import (CachedEpochs, ConvOnTheFly, ShuffledStore, fresh_manifests, load_store,
                            replay_manifests, train_head)

log = logging.getLogger(__name__)

MODES = ("cached", "replay", "onthefly", "noaug")


@dataclass(frozen=True)
class RunSpec:
    """What one run trains: mode, cached epochs K (cached and replay), repeat number and its seed."""

    mode: str
    k: int
    repeat: int
    seed: int


@dataclass(frozen=True)
class RunInputs:
    index: str
    val_store: str
    epoch_stores: tuple = ()
    manifests: tuple = ()
    noaug_store: str | None = None


def run_training(run: RunSpec, inputs: RunInputs, spec: BaseSpec, aug: AugmentConfig,
                 settings: CacheSettings, head: HeadConfig, out_head, out_metrics, out_summary) -> dict:
    """Train the head of one run and write head (.keras), metrics (CSV) and summary (JSON)."""
    if run.mode not in MODES:
        raise ValueError(f"train.modes: unknown mode {run.mode!r} (one of {', '.join(MODES)})")
    configure_tensorflow(settings.threads)
    index = read_index(inputs.index)
    names = class_names(index)
    expected_val = config_provenance(spec, None, settings)
    val_x, val_y, val_attrs = load_store(inputs.val_store, dict(expected_val, split="val"))
    weights = val_attrs["weights_sha256"]
    conv_seconds = 0.0
    disk_bytes = 0
    if run.mode == "cached":
        expected = dict(config_provenance(spec, aug, settings), split="train", weights_sha256=weights)
        source = CachedEpochs(inputs.epoch_stores, inputs.manifests, expected)
        conv_seconds = source.extraction_seconds
        disk_bytes = sum(Path(path).stat().st_size for path in inputs.epoch_stores)
    elif run.mode == "noaug":
        expected = dict(expected_val, split="train", weights_sha256=weights)
        source = ShuffledStore(inputs.noaug_store, expected, run.seed)
        conv_seconds = source.extraction_seconds
        disk_bytes = Path(inputs.noaug_store).stat().st_size
    else:
        model, preprocess = build_base(spec)
        built = weights_sha256(model)
        if built != weights:
            raise ProvenanceError(
                f"{inputs.val_store}: provenance field 'weights_sha256' is {weights!r}, but the conv base "
                f"built from the config has {built!r}"
            )
        feature_fn = feature_function(model, preprocess, spec.image_size)
        resampling = Resampling(aug.fill_mode, aug.cval, aug.interpolation)
        if run.mode == "replay":
            manifest_for = replay_manifests(inputs.manifests)
            dtype = settings.dtype
        else:
            train_rows = index[index["split"] == "train"]
            manifest_for = fresh_manifests(train_rows, aug, run.seed)
            dtype = "float32"
        source = ConvOnTheFly(manifest_for, feature_fn, spec.image_size, settings.batch_size,
                              resampling, dtype, spec.resize)
    feature_shape = val_x.shape[1:]
    label = f"{run.mode} K={run.k} repeat {run.repeat}" if run.mode in ("cached", "replay") \
        else f"{run.mode} repeat {run.repeat}"
    n_train = int((index["split"] == "train").sum())
    model, metrics = train_head(source, n_train, feature_shape, len(names), val_x, val_y, head, run.seed,
                                label)
    if run.mode in ("replay", "onthefly"):
        conv_seconds = float(metrics["conv_seconds"].sum())
    head_seconds = float((metrics["seconds"] - metrics["conv_seconds"]).sum())

    with atomic_path(out_head, ".keras") as tmp:
        model.save(tmp)
    with atomic_path(out_metrics) as tmp:
        metrics.to_csv(tmp, index=False, lineterminator="\n")
    summary = {
        "mode": run.mode,
        "k": run.k,
        "repeat": run.repeat,
        "seed": run.seed,
        "head_epochs": head.epochs,
        "final_val_accuracy": float(metrics["val_accuracy"].iloc[-1]),
        "best_val_accuracy": float(metrics["val_accuracy"].max()),
        "conv_seconds": conv_seconds,
        "head_seconds": head_seconds,
        "total_seconds": conv_seconds + head_seconds,
        "disk_bytes": disk_bytes,
        "n_train": n_train,
        "classes": names,
        "weights_sha256": weights,
    }
    with atomic_path(out_summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
