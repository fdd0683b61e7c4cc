"""One training run of a mode: assemble its feature source, train the head, write its outputs."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from augcache.atomic import atomic_path
from augcache.cache import CacheSettings, config_provenance, configure_tensorflow
from augcache.conv_base import BaseSpec, build_base, feature_function, weights_sha256
from augcache.dataset import class_names, read_index
from augcache.head import HeadConfig
from augcache.manifest import AugmentConfig
from augcache.pixels import open_pixels
from augcache.provenance import ProvenanceError
from augcache.store import check_store
from augcache.stream import StoreBlocks, block_rows, memory_budget_bytes
from augcache.train import (CachedEpochs, ConvOnTheFly, ShuffledStore, StreamedEpochs, fresh_manifests,
                            read_features, replay_manifests, row_bytes, train_head)

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
    pixel_store: str | None = None


def run_training(run: RunSpec, inputs: RunInputs, spec: BaseSpec, aug: AugmentConfig,
                 settings: CacheSettings, head: HeadConfig, out_head, out_metrics, out_summary,
                 memory_budget_mb="auto", pixel_size=None) -> dict:
    """Train the head of one run and write head (.keras), metrics (CSV) and summary (JSON).

    pixel_size: (H, W) of the pixels the conv base's inputs are made from (replay and onthefly;
    default spec.image_size), read from inputs.pixel_store when set, else decoded from the files.

    memory_budget_mb: "auto" or MiB. When the run's stored features (training and validation, as
    float32) exceed it, they are streamed from their stores instead of held in memory.
    """
    if run.mode not in MODES:
        raise ValueError(f"train.modes: unknown mode {run.mode!r} (one of {', '.join(MODES)})")
    configure_tensorflow(settings.threads)
    index = read_index(inputs.index)
    names = class_names(index)
    expected_val = dict(config_provenance(spec, None, settings), split="val")
    val_attrs = check_store(inputs.val_store, expected_val)
    weights = val_attrs["weights_sha256"]
    feature_shape = tuple(json.loads(val_attrs["feature_shape"]))
    n_train = int((index["split"] == "train").sum())
    streaming, rows_per_block = plan_memory(run, inputs, val_attrs, n_train, head.batch_size,
                                            memory_budget_mb)
    if streaming:
        val = StoreBlocks(inputs.val_store, rows_per_block)
    else:
        val = read_features(inputs.val_store)
    conv_seconds = 0.0
    disk_bytes = 0
    if run.mode == "cached":
        expected = dict(config_provenance(spec, aug, settings), split="train", weights_sha256=weights)
        if streaming:
            source = StreamedEpochs(inputs.epoch_stores, inputs.manifests, expected, rows_per_block)
        else:
            source = CachedEpochs(inputs.epoch_stores, inputs.manifests, expected)
        conv_seconds = source.extraction_seconds
        disk_bytes = sum(Path(path).stat().st_size for path in inputs.epoch_stores)
    elif run.mode == "noaug":
        expected = dict(expected_val, split="train", weights_sha256=weights)
        source = ShuffledStore(inputs.noaug_store, expected, run.seed,
                               rows_per_block if streaming else None)
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
        pixels = open_pixels(pixel_size or spec.image_size, spec.resize, inputs.pixel_store, inputs.index)
        if run.mode == "replay":
            manifest_for = replay_manifests(inputs.manifests)
            dtype = settings.dtype
        else:
            train_rows = index[index["split"] == "train"]
            manifest_for = fresh_manifests(train_rows, aug, run.seed)
            dtype = "float32"
        source = ConvOnTheFly(manifest_for, pixels, feature_fn, spec.image_size, settings.batch_size,
                              aug.resampling, dtype)
    label = f"{run.mode} K={run.k} repeat {run.repeat}" if run.mode in ("cached", "replay") \
        else f"{run.mode} repeat {run.repeat}"
    model, metrics = train_head(source, n_train, feature_shape, len(names), val, head, run.seed, label)
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
        "features_from": "stream" if streaming else "memory",
    }
    with atomic_path(out_summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def plan_memory(run: RunSpec, inputs: RunInputs, val_attrs: dict, n_train: int, batch_size: int,
                memory_budget_mb) -> tuple[bool, int]:
    """(stream?, rows per block): stream when the run's stored features exceed the budget.

    Held in memory, a run keeps its K epoch stores (cached), its unaugmented store (noaug) or one
    epoch of computed features (replay, onthefly, never streamed) plus the validation store, all
    as float32. Streaming keeps a few blocks of each, sized to half the budget.
    """
    budget = memory_budget_bytes(memory_budget_mb)
    per_row = row_bytes(val_attrs)
    stored_epochs = {"cached": len(inputs.epoch_stores), "noaug": 1}.get(run.mode, 0)
    needed = per_row * (stored_epochs * n_train + int(val_attrs["n_samples"]))
    rows = block_rows(per_row, batch_size, budget // 2)
    streaming = stored_epochs > 0 and needed > budget
    log.info("features: %.1f MiB as float32, memory budget %.1f MiB: %s", needed / 2**20, budget / 2**20,
             f"streamed from the stores, {rows} rows per block" if streaming else "held in memory")
    return streaming, rows
