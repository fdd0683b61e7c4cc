"""Conv base + head as one Keras model that takes raw images, and prediction on a folder."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from augcache.atomic import atomic_path, write_text_atomic
from augcache.augment import IDENTITY_PARAMS, PARAM_COLUMNS
from augcache.conv_base import BaseSpec, application, build_base
from augcache.extract import augmented_batches
from augcache.images import IMAGE_EXTENSIONS
from augcache.pixels import Pixels

log = logging.getLogger(__name__)


@keras.saving.register_keras_serializable(package="augcache")
class Preprocess(keras.layers.Layer):
    """The ``preprocess_input`` of a keras.applications architecture, as a saveable layer."""

    def __init__(self, architecture: str, **kwargs):
        super().__init__(**kwargs)
        self.architecture = architecture
        self._fn = application(architecture)[1]

    def call(self, images):
        return self._fn(images)

    def get_config(self):
        return {**super().get_config(), "architecture": self.architecture}


def build_full_model(spec: BaseSpec, head):
    """raw images (B, H, W, 3) float32 in [0, 255] -> class probabilities (computed in float32,
    whatever policy the features were cached with)."""
    base, _ = build_base(dataclasses.replace(spec, compute_dtype="float32"))
    inputs = keras.Input((*spec.image_size, 3), name="image")
    x = inputs
    if not spec.is_model_file:
        x = Preprocess(spec.architecture, name="preprocess")(x)
    x = base(x, training=False)
    outputs = head(x)
    return keras.Model(inputs, outputs, name="augcache_classifier")


def export_full_model(spec: BaseSpec, head_path, classes: list[str], out_model, out_classes,
                      pixel_size=None) -> None:
    """Save base + head as one model, and classes.json: class names, input size, resize policy
    and the pixel size images are decoded to before they are resized to the input size."""
    head = keras.saving.load_model(head_path, safe_mode=True)
    model = build_full_model(spec, head)
    with atomic_path(out_model, ".keras") as tmp:
        model.save(tmp)
    meta = {"classes": classes, "image_size": list(spec.image_size), "resize": spec.resize,
            "pixel_size": list(pixel_size or spec.image_size)}
    write_text_atomic(out_classes, json.dumps(meta, indent=2) + "\n")


def load_full_model(path):
    """Load an exported model (safe mode; the Preprocess layer is registered by this module)."""
    return keras.saving.load_model(path, safe_mode=True)


def list_images(folder) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"predict.dir: folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"predict.dir: no images in {root}")
    return files


def usable_images(files) -> tuple[list[Path], list[tuple[str, str]]]:
    """(files that decode, [(path, reason)] of those that do not), each file checked once."""
    from concurrent.futures import ThreadPoolExecutor

    from augcache.dataset import check_image

    with ThreadPoolExecutor(max_workers=4) as pool:
        reasons = [reason for _, reason in pool.map(lambda p: check_image(str(p)), files)]
    good = [f for f, reason in zip(files, reasons, strict=True) if not reason]
    bad = [(str(f), reason) for f, reason in zip(files, reasons, strict=True) if reason]
    for path, reason in bad:
        log.warning("%s: %s; left out", path, reason)
    if not good:
        raise ValueError(f"predict.dir: none of the {len(files)} images below {Path(files[0]).parent} can be "
                         "read: " + "; ".join(f"{p}: {r}" for p, r in bad[:5]))
    return good, bad


def predict_folder(model_path, classes_path, folder, batch_size: int = 64) -> pd.DataFrame:
    """path, label, probability of the most probable class, for every image below `folder`.

    Files that do not decode (corrupt, too many pixels, not images) are left out and logged with
    their reasons, so one bad file does not stop the others.
    """
    meta = json.loads(Path(classes_path).read_text())
    classes, size = meta["classes"], tuple(meta["image_size"])
    model = load_full_model(model_path)
    files, _ = usable_images(list_images(folder))
    table = pd.DataFrame({"sample_id": [str(p) for p in files], "path": [str(p) for p in files]})
    for name, value in zip(PARAM_COLUMNS, IDENTITY_PARAMS):
        table[name] = value
    pixels = Pixels(meta.get("pixel_size", size), meta.get("resize", "stretch"))
    batches = augmented_batches(table, pixels, size, batch_size)
    probabilities = np.concatenate([model.predict_on_batch(images) for images in batches])
    best = probabilities.argmax(axis=1)
    return pd.DataFrame({
        "path": [str(p) for p in files],
        "label": [classes[i] for i in best],
        "probability": probabilities[np.arange(len(files)), best],
    })


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m augcache.full_model",
        description="Classify every image below a folder with an exported augcache model.")
    parser.add_argument("model", help="results/model/model.keras")
    parser.add_argument("folder", help="folder of images (searched recursively)")
    parser.add_argument("out", help="CSV to write: path,label,probability")
    parser.add_argument("--classes", help="classes JSON (default: classes.json beside the model)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    classes = args.classes or str(Path(args.model).with_name("classes.json"))
    table = predict_folder(args.model, classes, args.folder, args.batch_size)
    write_text_atomic(args.out, table.to_csv(index=False, lineterminator="\n"))
    print(f"{len(table)} images classified -> {args.out}")


if __name__ == "__main__":
    main()
