"""The built-in demo: synthetic shape images and a small conv base pretrained on other shapes.

Training images show each shape near the centre and nearly upright; validation images show it
anywhere and at any tilt, so a head trained on unaugmented training features has to generalise
to positions and orientations it never saw: the situation augmentation is for.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from augcache.core.atomic import atomic_path, normalise_keras_archive

log = logging.getLogger(__name__)

DEMO_CLASSES = ("circle", "cross", "square", "triangle")
PRETEXT_CLASSES = ("bar", "hexagon", "pentagon", "ring")
# (max centre offset as a fraction of the size, max rotation in degrees)
TRAIN_SPREAD = (0.06, 10.0)
VAL_SPREAD = (0.22, 45.0)
SUPERSAMPLE = 3


def _polygon(u, v, sides: int, radius: float):
    inside = np.ones_like(u, dtype=bool)
    for k in range(sides):
        angle = 2 * np.pi * k / sides - np.pi / 2
        inside &= u * np.cos(angle) + v * np.sin(angle) <= radius * np.cos(np.pi / sides)
    return inside


def _mask(shape: str, u, v, r: float):
    if shape == "circle":
        return u**2 + v**2 <= r**2
    if shape == "ring":
        d = u**2 + v**2
        return (d <= r**2) & (d >= (0.55 * r) ** 2)
    if shape == "square":
        return np.maximum(abs(u), abs(v)) <= 0.8 * r
    if shape == "bar":
        return (abs(u) <= r) & (abs(v) <= 0.3 * r)
    if shape == "cross":
        return ((abs(u) <= r) & (abs(v) <= 0.3 * r)) | ((abs(u) <= 0.3 * r) & (abs(v) <= r))
    if shape == "triangle":
        return _polygon(u, v, 3, r)
    if shape == "pentagon":
        return _polygon(u, v, 5, r)
    if shape == "hexagon":
        return _polygon(u, v, 6, r)
    raise ValueError(f"unknown shape {shape!r}")


def render(shape: str, size: int, rng: np.random.Generator, spread: tuple[float, float]) -> np.ndarray:
    """One (size, size, 3) uint8 image of `shape` on a noisy background."""
    offset, max_angle = spread
    n = size * SUPERSAMPLE
    cx, cy = (rng.uniform(-offset, offset, 2) + 0.5) * n
    angle = np.deg2rad(rng.uniform(-max_angle, max_angle))
    radius = rng.uniform(0.18, 0.24) * n
    y, x = np.mgrid[0:n, 0:n] + 0.5
    u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
    coverage = _mask(shape, u, v, radius).reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))
    background = rng.uniform(20, 90, 3)
    colour = rng.uniform(150, 255, 3)
    image = background + coverage[..., None] * (colour - background)
    image += rng.normal(0, 8, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def demo_file(split: str, name: str, i: int) -> str:
    """A demo image's path below the demo folder (its sample id)."""
    return f"{split}/{name}/{name}_{i:04d}.png"


def demo_index(demo: dict):
    """The sample ids, labels and splits the demo's index will hold (demo: the ``demo`` config)."""
    import pandas as pd

    rows = [(demo_file(split, name, i), name, split)
            for split, count in (("train", demo["train_per_class"]), ("val", demo["val_per_class"]))
            for name in DEMO_CLASSES for i in range(count)]
    return pd.DataFrame(rows, columns=["sample_id", "label", "split"]).sort_values("sample_id")


def write_demo_images(out_dir, size: int, train_per_class: int, val_per_class: int, seed: int) -> None:
    """Write PNGs to out_dir/{train,val}/{class}/{class}_{i:04d}.png, the same bytes for the same seed."""
    from PIL import Image

    out = Path(out_dir)
    for split_no, (split, count, spread) in enumerate(
        (("train", train_per_class, TRAIN_SPREAD), ("val", val_per_class, VAL_SPREAD))
    ):
        for class_no, name in enumerate(DEMO_CLASSES):
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(np.random.SeedSequence([seed, split_no, class_no]))
            for i in range(count):
                Image.fromarray(render(name, size, rng, spread)).save(out / demo_file(split, name, i), format="PNG")
        log.info("%s: %d images per class written", split, count)


def pretext_data(size: int, per_class: int, seed: int):
    """Images of the pretext shapes, anywhere and at any tilt, with their labels."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 99]))
    images, labels = [], []
    for label, name in enumerate(PRETEXT_CLASSES):
        for _ in range(per_class):
            images.append(render(name, size, rng, VAL_SPREAD))
            labels.append(label)
    order = rng.permutation(len(labels))
    return np.stack(images)[order].astype(np.float32), np.array(labels)[order]


def build_demo_base(size: int):
    """Three conv blocks (conv, BatchNorm, ReLU, max-pool); input pixels in [0, 255]."""
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    for filters in (16, 32, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    return keras.Model(inputs, x, name="demo_base")


def train_demo_base(out_path, size: int, per_class: int, epochs: int, seed: int) -> float:
    """Pretrain the demo base on the pretext shapes and save it (conv part only) as .keras.

    Returns the pretext training accuracy of the last epoch.
    """
    import keras

    from augcache.core import backend

    backend.configure(deterministic_ops=True)
    keras.utils.set_random_seed(seed)
    images, labels = pretext_data(size, per_class, seed)
    base = build_demo_base(size)
    head = keras.layers.Dense(len(PRETEXT_CLASSES), activation="softmax")
    model = keras.Sequential([base, keras.layers.GlobalAveragePooling2D(), head])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(images, labels, batch_size=32, epochs=epochs, shuffle=True, verbose=2)
    accuracy = float(history.history["accuracy"][-1])
    log.info("demo base: pretext accuracy %.3f after %d epochs", accuracy, epochs)
    with atomic_path(out_path, ".keras") as tmp:
        base.save(tmp)
        normalise_keras_archive(tmp)
    return accuracy
