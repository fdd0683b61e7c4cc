"""One training run of a mode: assemble its feature source, train the head, write its outputs."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from augcache.augmentation.feature_augment import FeatureAugmentConfig, FeatureAugmented
from augcache.augmentation.manifest import AugmentConfig
from augcache.base.conv_base import BaseSpec, build_bottom, feature_function, split_base
from augcache.base.store_fields import CacheConfig, base_provenance, config_provenance
from augcache.core import backend
from augcache.core.atomic import atomic_path, write_csv, write_json
from augcache.core.memory import memory_budget_bytes
from augcache.core.provenance import check_fields
from augcache.data.dataset import class_names, read_index
from augcache.data.folds import labelled_rows
from augcache.data.pixels import open_pixels
from augcache.evaluation.metrics import balanced_class_weights, scores
from augcache.store.features import check_store, row_bytes
from augcache.store.stream import block_rows
from augcache.training.finetune import FinetuneConfig, phase_summary, train_finetune
from augcache.training.folds import Fold, refit_epoch
from augcache.training.head import HeadConfig
from augcache.training.modes import Mode, mode
from augcache.training.sweep import best_epoch
from augcache.training.train import (
    ConvOnTheFly,
    batches,
    fresh_manifests,
    replay_manifests,
    train_head,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSpec:
    """What one run trains: mode, cached epochs K (cached and replay), repeat number and its seed;
    with eval.folds (folds F), its fold (None: the head refit on every labelled image)."""

    mode: str
    k: int
    repeat: int
    seed: int
    folds: int = 0
    fold: int | None = None


@dataclass(frozen=True)
class RunInputs:
    """A run's input files. With eval.folds: a fold's run has its repeat's folds and the unaugmented
    store (fold_val, whose fold rows score it); the refit head, the fold runs' metrics."""

    index: str
    val_store: str
    # the stores of the mode's kind (augcache.training.kinds), in the order the run reads them
    train_stores: tuple = ()
    manifests: tuple = ()
    pixel_store: str | None = None
    folds: str | None = None
    fold_val: str | None = None
    fold_metrics: tuple = ()


@dataclass(frozen=True)
class TrainingConfig:
    """How every run trains: the conv base, the augmentation, the cache config and the head.

    memory_budget_mb: "auto" or MiB. When a run's stored features (training and validation, as
        float32) exceed it, they are streamed from their stores instead of held in memory.
    pixel_size: (H, W) of the pixels the conv base's inputs are made from (replay and onthefly;
        default spec.image_size).
    finetune: the second phase of a run when spec.split_at is set (see :mod:`augcache.training.finetune`).
    feature_augment: the feature transforms of a mode that augments features.
    """

    spec: BaseSpec
    aug: AugmentConfig
    cache: CacheConfig
    head: HeadConfig
    memory_budget_mb: object = "auto"
    pixel_size: tuple | None = None
    finetune: FinetuneConfig = FinetuneConfig()
    feature_augment: FeatureAugmentConfig = FeatureAugmentConfig()


@dataclass(frozen=True)
class RunOutputs:
    """A run's files: head (.keras) after the last epoch and at the best one, metrics (CSV, one row
    per head epoch), summary (JSON) and, for a mode that augments features, the transforms drawn
    (compressed CSV, see :mod:`augcache.augmentation.feature_augment`)."""

    head: str
    best_head: str
    metrics: str
    summary: str
    feature_params: str | None = None


@dataclass
class FeatureSource:
    """A run's training features (see :mod:`augcache.training.train`), what computing them cost and what
    storing them takes; conv_seconds is None when the base runs during training (measured there)."""

    epochs: object
    conv_seconds: float | None
    disk_bytes: int


def run_training(run: RunSpec, inputs: RunInputs, config: TrainingConfig, outputs: RunOutputs) -> dict:
    """Train the head of one run and write its outputs; return its summary."""
    run_mode = mode(run.mode)
    backend.configure(config.cache.threads, config.cache.deterministic_ops)
    index = read_index(inputs.index)
    fold = Fold.of(run, inputs)
    train_rows = fold.training(labelled_rows(index, run.folds))
    n_train = len(train_rows)
    val_attrs = check_store(inputs.val_store, dict(config_provenance(config.spec, None, config.cache),
                                                   split="val"))
    streaming, rows_per_block = plan_memory(run_mode, inputs, val_attrs, n_train, config.head.batch_size,
                                            config.memory_budget_mb)
    val = fold.validation(config, val_attrs, rows_per_block if streaming else None)
    split_at = config.spec.split_at
    base = checked_base(config.spec, val_attrs, inputs.val_store) if split_at or run_mode.runs_base else None
    source = feature_source(run_mode, run, inputs, config, val_attrs, train_rows,
                            rows_per_block if streaming else None, base, fold.keep)
    if run_mode.feature_augment:
        source.epochs = FeatureAugmented(source.epochs, config.feature_augment, run.seed, n_train,
                                         feature_shape(val_attrs))
    names = class_names(index)
    label = run_mode.label(run.k, run.repeat, run.fold)
    keep_epoch = refit_epoch(inputs.fold_metrics, config.head.select_on) if inputs.fold_metrics else None
    weights = (balanced_class_weights(train_rows["label_index"], len(names))
               if config.head.class_weight == "balanced" else None)
    if split_at:
        _, top = split_base(base.model, split_at)
        model, metrics, best_weights, tuned = train_finetune(
            source.epochs, n_train, feature_shape(val_attrs), len(names), val, config.head, config.finetune,
            top, run.seed, f"fine-tune {label}", weights, keep_epoch)
    else:
        model, metrics, best_weights = train_head(source.epochs, n_train, feature_shape(val_attrs), len(names),
                                                  val, config.head, run.seed, label, weights, keep_epoch)
    summary = run_summary(run, config.head, metrics, source, n_train, names,
                          weights=val_attrs["weights_sha256"], streamed=streaming)
    summary.update(fold.summary(len(inputs.fold_metrics), keep_epoch))
    if keep_epoch is not None:  # the refit head is kept at the epoch the folds chose
        summary.update(best_epoch=keep_epoch,
                       best_val_accuracy_at_best_epoch=float(metrics["val_accuracy"].iloc[keep_epoch]))
    summary.update(macro_scores(model, best_weights, val, len(names), max(config.head.batch_size, 256)))
    summary["head_parameters"] = int(model.count_params())
    summary["cache_dtype"] = config.cache.dtype
    summary["keras_backend"] = backend.name()
    summary["class_weight"] = config.head.class_weight
    if weights is not None:
        summary["class_weights"] = dict(zip(names, (float(w) for w in weights)))
    if run_mode.feature_augment:
        summary["feature_augment"] = config.feature_augment.to_dict()
    if split_at:
        summary.update(split=split_at, finetune_epochs=config.finetune.epochs,
                       finetune_learning_rate=config.finetune.learning_rate, top_trainable_parameters=tuned,
                       **phase_summary(metrics, config.head.epochs))
        summary["head_parameters"] -= int(top.count_params())
    write_outputs(outputs, model, metrics, summary, best_weights, source)
    return summary


def macro_scores(model, best_weights, val, n_classes: int, batch_size: int) -> dict:
    """Macro-averaged validation accuracy (the mean of per-class recalls) of the final head and of
    the head at the best epoch; the model keeps its final weights."""
    import numpy as np
    from keras import ops

    def predicted():
        # called directly (inference mode), not through predict(), which compiles a function per model
        parts = [(y, ops.convert_to_numpy(model(x, training=False)))
                 for x, y in batches([val] if isinstance(val, tuple) else val, batch_size)]
        return np.concatenate([y for y, _ in parts]), np.concatenate([p for _, p in parts])

    final = model.get_weights()
    true, probs = predicted()
    out = {"final_val_macro_accuracy": scores(true, probs, n_classes)["macro_accuracy"]}
    model.set_weights(best_weights)
    true, probs = predicted()
    out["best_head_val_macro_accuracy"] = scores(true, probs, n_classes)["macro_accuracy"]
    model.set_weights(final)
    return out


@dataclass(frozen=True)
class CheckedBase:
    """The conv base built from the config, its bottom (the base itself without a split) and its
    preprocess_input, checked to be the one the stores were made with."""

    model: object
    bottom: object
    preprocess: object


def checked_base(spec: BaseSpec, val_attrs: dict, val_store) -> CheckedBase:
    """Build the base and check its weights (and its bottom's) against the validation store's."""
    model, bottom, preprocess = build_bottom(spec)
    check_fields(val_store, val_attrs, base_provenance(spec, model, bottom))
    return CheckedBase(model, bottom, preprocess)


def feature_shape(attrs: dict) -> tuple:
    return tuple(json.loads(attrs["feature_shape"]))


def feature_source(run_mode: Mode, run: RunSpec, inputs: RunInputs, config: TrainingConfig, val_attrs: dict,
                   train_rows, rows_per_block: int | None, base: CheckedBase | None = None,
                   keep=None) -> FeatureSource:
    """The training features of a run of this mode, checked against the validation store's base:
    read from its stores (streamed in blocks of rows_per_block rows when given) or computed by the
    base's bottom (the whole base without a split; see :func:`checked_base`) during training (from
    train_rows, the index's training rows, with fresh numbers). keep: None, or keep(sample ids) ->
    the rows that train (a fold's run)."""
    kind = run_mode.stored
    if kind is not None:
        expected = dict(config_provenance(config.spec, config.aug if kind.augmented else None, config.cache),
                        split="train", weights_sha256=val_attrs["weights_sha256"])
        epochs = kind.open(inputs.train_stores, inputs.manifests, expected, run.seed, rows_per_block, keep)
        return FeatureSource(epochs, epochs.extraction_seconds, _bytes_on_disk(inputs.train_stores))
    return FeatureSource(conv_on_the_fly(run_mode, run, inputs, config, base, train_rows, keep), None, 0)


def conv_on_the_fly(run_mode: Mode, run: RunSpec, inputs: RunInputs, config: TrainingConfig, base: CheckedBase,
                    train_rows, keep=None) -> ConvOnTheFly:
    """Features computed every head epoch by the base's bottom, from the manifests' numbers (replay,
    stored as the cache dtype stores them) or from fresh numbers (onthefly, float32)."""
    spec = config.spec
    pixel_size = tuple(config.pixel_size or spec.image_size)
    pixels = open_pixels(pixel_size, spec.resize, inputs.pixel_store, inputs.index)
    if run_mode.manifests == "cached":
        manifest_for, dtype = replay_manifests(inputs.manifests, keep), config.cache.dtype
    else:
        manifest_for = fresh_manifests(train_rows, config.aug, run.seed, pixel_size)
        dtype = "float32"
    return ConvOnTheFly(manifest_for, pixels, feature_function(base.bottom, base.preprocess, spec.image_size),
                        spec.image_size, config.cache.batch_size, config.aug.resampling, dtype)


def _bytes_on_disk(paths) -> int:
    return sum(Path(path).stat().st_size for path in paths)


def run_summary(run: RunSpec, head: HeadConfig, metrics, source: FeatureSource, n_train: int, names: list,
                weights: str, streamed: bool) -> dict:
    """The summary record of a finished run: accuracies, seconds, disk, provenance."""
    conv_seconds = source.conv_seconds
    if conv_seconds is None:
        conv_seconds = float(metrics["conv_seconds"].sum())
    head_seconds = float((metrics["seconds"] - metrics["conv_seconds"]).sum())
    best = best_epoch(metrics, head.select_on)
    return {
        "mode": run.mode,
        "k": run.k,
        "repeat": run.repeat,
        "seed": run.seed,
        "head_epochs": head.epochs,
        "final_val_accuracy": float(metrics["val_accuracy"].iloc[-1]),
        "best_val_accuracy": float(metrics["val_accuracy"].max()),
        "best_val_loss": float(metrics["val_loss"].min()),
        "select_on": head.select_on,
        "best_epoch": best,
        "best_val_accuracy_at_best_epoch": float(metrics["val_accuracy"].iloc[best]),
        "conv_seconds": conv_seconds,
        "head_seconds": head_seconds,
        "total_seconds": conv_seconds + head_seconds,
        "disk_bytes": source.disk_bytes,
        "n_train": n_train,
        "classes": names,
        "weights_sha256": weights,
        "features_from": "stream" if streamed else "memory",
    }


def write_outputs(outputs: RunOutputs, model, metrics, summary: dict, best_weights, source: FeatureSource) -> None:
    """Write a run's head (final and at its best epoch), metrics, feature transforms (when it drew
    any) and summary, each atomically."""
    with atomic_path(outputs.head, ".keras") as tmp:
        model.save(tmp)
    model.set_weights(best_weights)
    with atomic_path(outputs.best_head, ".keras") as tmp:
        model.save(tmp)
    write_csv(outputs.metrics, metrics)
    if outputs.feature_params:
        source.epochs.write(outputs.feature_params)
    write_json(outputs.summary, summary)


def plan_memory(run_mode: Mode, inputs: RunInputs, val_attrs: dict, n_train: int, batch_size: int,
                memory_budget_mb) -> tuple[bool, int]:
    """(stream?, rows per block): stream when the run's stored features exceed the budget.

    Held in memory, a run keeps the stores it trains on (K epoch stores for cached, the unaugmented
    store for noaug) or one epoch of computed features (replay, onthefly, never streamed) plus the
    validation store, all as float32. Streaming keeps a few blocks of each, sized to half the budget.
    """
    budget = memory_budget_bytes(memory_budget_mb)
    per_row = row_bytes(val_attrs)
    stored_epochs = len(inputs.train_stores) if run_mode.stored is not None else 0
    needed = per_row * (stored_epochs * n_train + int(val_attrs["n_samples"]))
    rows = block_rows(per_row, batch_size, budget // 2)
    streaming = stored_epochs > 0 and needed > budget
    log.info("features: %.1f MiB as float32, memory budget %.1f MiB: %s", needed / 2**20, budget / 2**20,
             f"streamed from the stores, {rows} rows per block" if streaming else "held in memory")
    return streaming, rows
