"""The dense head trained on conv features."""

from __future__ import annotations

from dataclasses import dataclass

OPTIMIZERS = ("adam", "sgd", "rmsprop")


@dataclass(frozen=True)
class HeadConfig:
    """flatten: how a conv map becomes a vector (``flatten``, ``avg`` or ``max``; vectors pass).
    hidden_units: sizes of the hidden ReLU layers, each followed by dropout.
    select_on: what a run's best epoch is best at: ``val_accuracy`` (highest) or ``val_loss`` (lowest).
    class_weight: None, or ``balanced``: each training sample's loss is weighted by
        n / (classes × its class's count) (see :func:`augcache.evaluation.metrics.balanced_class_weights`).
    """

    flatten: str = "flatten"
    hidden_units: tuple[int, ...] = (128,)
    dropout: float = 0.3
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 20
    select_on: str = "val_accuracy"
    class_weight: str | None = None

    @classmethod
    def from_config(cls, cfg: dict) -> "HeadConfig":
        cfg = dict(cfg)
        cfg["hidden_units"] = tuple(int(u) for u in cfg.get("hidden_units", ()))
        if cfg.get("class_weight") not in (None, "balanced"):
            raise ValueError(f"head.class_weight must be null or 'balanced', got {cfg['class_weight']!r}")
        return cls(**cfg)


def build_head(feature_shape, n_classes: int, cfg: HeadConfig, seed: int):
    """A compiled head: features (B, *feature_shape) -> class probabilities (B, n_classes)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(tuple(feature_shape), name="features")
    x = inputs
    if len(feature_shape) == 3:
        x = {
            "flatten": keras.layers.Flatten(),
            "avg": keras.layers.GlobalAveragePooling2D(),
            "max": keras.layers.GlobalMaxPooling2D(),
        }[cfg.flatten](x)
    for units in cfg.hidden_units:
        x = keras.layers.Dense(units, activation="relu")(x)
        if cfg.dropout > 0:
            x = keras.layers.Dropout(cfg.dropout)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="head")
    compile_classifier(model, cfg.optimizer, cfg.learning_rate)
    return model


def compile_classifier(model, optimizer: str, learning_rate: float, loss_scale: bool = False) -> None:
    """Compile a model that outputs class probabilities, with a fresh optimizer (wrapped for loss
    scaling when parts of the model compute in float16)."""
    import keras

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"head.optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    chosen = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }[optimizer](learning_rate=learning_rate)
    if loss_scale:
        chosen = keras.optimizers.LossScaleOptimizer(chosen)
    model.compile(optimizer=chosen, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
