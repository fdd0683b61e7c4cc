"""Fine-tuning the top of a split base with the head, on activations at the split.

A run has two phases over one numbering of epochs (epoch n reads the source's epoch n, so cached
epochs keep cycling n mod K across both):

1. the head, for head.epochs, with the top frozen: the top's output for a cached activation is
   the base's feature, so this phase is head training (and no large gradients from a new head
   reach the top);
2. the top and the head, for finetune.epochs, at finetune.learning_rate, with the top's
   BatchNorm layers kept in inference mode (frozen, as Keras recommends for fine-tuning).

The trained model maps activations at the split to class probabilities; bottom + this model is
the classifier of raw images.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pandas as pd

from augcache.training.head import HeadConfig, build_head, compile_classifier
from augcache.training.train import EpochFit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    """learning_rate and epochs of the second phase (the top and the head together)."""

    learning_rate: float = 1e-5
    epochs: int = 10

    @classmethod
    def from_config(cls, cfg: dict) -> "FinetuneConfig":
        return cls(learning_rate=float(cfg.get("learning_rate", 1e-5)), epochs=int(cfg.get("epochs", 10)))


def is_batch_norm(layer) -> bool:
    import keras

    return isinstance(layer, keras.layers.BatchNormalization)


def unfreeze_top(top) -> int:
    """Make the top trainable except its BatchNorm layers (which then run in inference mode);
    returns the number of trainable parameters."""
    top.trainable = True
    for layer in top.layers:
        if is_batch_norm(layer):
            layer.trainable = False
    return int(sum(math.prod(w.shape) for w in top.trainable_weights))


def computes_in_float16(model) -> bool:
    return any(getattr(layer.dtype_policy, "compute_dtype", "float32") == "float16" for layer in model.layers)


def classifier_on_top(top, head):
    """activations at the split -> class probabilities: the top, then the head."""
    import keras

    inputs = keras.Input(tuple(int(d) for d in top.input.shape[1:]), name="activations")
    return keras.Model(inputs, head(top(inputs)), name="finetuned")


def train_finetune(source, n_samples: int, activation_shape, n_classes: int, val, cfg: HeadConfig,
                   tune: FinetuneConfig, top, seed: int, label: str = "finetune", class_weights=None,
                   keep_epoch: int | None = None):
    """Train the head with the top frozen, then both (see the module's description); returns
    (model, metrics DataFrame, weights at the best epoch of both phases, trainable top parameters).

    source, val and keep_epoch as for :func:`augcache.training.train.train_head`, holding activations
    at the split.
    """
    top.trainable = False
    head = build_head(tuple(int(d) for d in top.output.shape[1:]), n_classes, cfg, seed)
    model = classifier_on_top(top, head)
    loss_scale = computes_in_float16(top)
    compile_classifier(model, cfg.optimizer, cfg.learning_rate, loss_scale)
    fit = EpochFit(model, source, n_samples, activation_shape, val, cfg, label, class_weights, keep_epoch)
    total = cfg.epochs + tune.epochs
    fit.run(cfg.epochs, total)
    trainable = unfreeze_top(top)
    log.info("%s: the head is trained; fine-tuning %d parameters of the top with it at learning rate %g "
             "(BatchNorm layers frozen)", label, trainable, tune.learning_rate)
    compile_classifier(model, cfg.optimizer, tune.learning_rate, loss_scale)
    fit.run(tune.epochs, total)
    return model, fit.metrics(), fit.best_weights, trainable


def phase_summary(metrics: pd.DataFrame, head_epochs: int) -> dict:
    """Head-only and fine-tuned accuracies and seconds per epoch (the median, so the first epoch
    of a phase, which also compiles, does not weigh in) of a run's two phases."""
    head, tuned = metrics.iloc[:head_epochs], metrics.iloc[head_epochs:]
    return {
        "head_only_final_val_accuracy": float(head["val_accuracy"].iloc[-1]),
        "head_only_best_val_accuracy": float(head["val_accuracy"].max()),
        "finetuned_final_val_accuracy": float(tuned["val_accuracy"].iloc[-1]),
        "finetuned_best_val_accuracy": float(tuned["val_accuracy"].max()),
        "head_seconds_per_epoch": float(head["seconds"].median()),
        "finetune_seconds_per_epoch": float(tuned["seconds"].median()),
    }
