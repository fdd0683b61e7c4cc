"""Conv base + head as one Keras model that takes raw images, and prediction on a folder."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from augcache.augmentation.params import IDENTITY_PARAMS, PARAM_COLUMNS
from augcache.base.conv_base import BaseSpec, build_base, split_base, with_policy
from augcache.base.extract import augmented_batches
from augcache.core import backend
from augcache.core.atomic import atomic_path, write_json
from augcache.data.images import IMAGE_EXTENSIONS
from augcache.data.pixels import Pixels

log = logging.getLogger(__name__)


def preprocess_affine(preprocess) -> tuple[np.ndarray, np.ndarray]:
    """(W (3, 3), b (3,)) such that preprocess(x) = x @ W + b for every RGB pixel x in [0, 255].

    Every keras.applications ``preprocess_input`` (caffe, tf and torch modes, or none) is such a
    map (caffe's BGR flip is a permutation in W). It is found by probing the function, then
    checked on random pixels; ValueError if the function is not per-pixel affine.
    """
    # float64 probes at full scale, so W and b carry no float32 rounding of their own
    probe = np.zeros((1, 1, 4, 3), np.float64)
    probe[0, 0, 1:] = 255.0 * np.eye(3)
    response = np.asarray(preprocess(probe.copy()), np.float64).reshape(4, 3)
    bias = response[0]
    weights = (response[1:] - bias) / 255.0
    check = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype(np.float32)
    want = np.asarray(preprocess(check.copy()), np.float64)
    if not np.allclose(check.astype(np.float64) @ weights + bias, want, rtol=1e-5, atol=1e-4):
        raise ValueError("the base's preprocess_input is not a per-pixel affine map; it cannot be exported "
                         "with built-in Keras layers")
    return weights, bias


def preprocess_layer(preprocess):
    """A base's per-pixel affine preprocessing (a keras.applications ``preprocess_input``, or a
    keras-hub image converter's scale and offset) as a built-in Dense layer on the channel axis
    (None when it is the identity), so an exported model needs no code of this package."""
    weights, bias = preprocess_affine(preprocess)
    if np.allclose(weights, np.eye(3)) and np.allclose(bias, 0.0):
        return None
    layer = keras.layers.Dense(3, name="preprocess", trainable=False)
    layer.build((None, 3))
    layer.set_weights([weights.astype(np.float32), bias.astype(np.float32)])
    return layer


def build_full_model(spec: BaseSpec, head):
    """raw images (B, H, W, 3) float32 in [0, 255] -> class probabilities (computed in float32,
    whatever policy the features were cached with). Only built-in Keras layers, so
    ``keras.saving.load_model`` opens it without this package (a keras-hub backbone's layers need
    ``import keras_hub`` first).

    head: the trained head, or with spec.split_at the fine-tuned top and head (which take the
    activations at the split); the base's bottom then comes before it.
    """
    base, preprocess_input = build_base(dataclasses.replace(spec, compute_dtype="float32"))
    if spec.split_at:
        base, _ = split_base(base, spec.split_at)
        if spec.compute_dtype != "float32":
            head = with_policy(head, "float32")
    inputs = keras.Input((*spec.image_size, 3), name="image")
    x = inputs
    preprocess = None if spec.is_model_file else preprocess_layer(preprocess_input)
    if preprocess is not None:
        x = preprocess(x)
    x = base(x, training=False)
    outputs = head(x)
    return keras.Model(inputs, outputs, name="augcache_classifier")


def export_full_model(spec: BaseSpec, head_path, classes: list[str], out_model, out_classes,
                      pixel_size=None, out_saved_model=None, selection: dict | None = None,
                      tta: dict | None = None) -> None:
    """Save base + head as one model (.keras), optionally as a TensorFlow SavedModel for serving
    (its ``serve`` signature takes the same images), and classes.json: class names, input size,
    resize policy, the pixel size images are decoded to before they are resized, and which head
    it is (selection: see :func:`augcache.training.sweep.select_head`), and how test-time views are drawn
    (tta: the augmentation and seed, see :func:`predict_files`)."""
    head = keras.saving.load_model(head_path, compile=False, safe_mode=True)
    model = build_full_model(spec, head)
    with atomic_path(out_model, ".keras") as tmp:
        model.save(tmp)
    if out_saved_model:
        with atomic_path(out_saved_model) as tmp:
            model.export(str(tmp), format="tf_saved_model", verbose=False)
    else:
        log.info("no TensorFlow SavedModel: it is written under the TensorFlow backend only (this one: %s); "
                 "%s loads under any Keras backend", backend.name(), out_model)
    meta = {"classes": classes, "image_size": list(spec.image_size), "resize": spec.resize,
            "pixel_size": list(pixel_size or spec.image_size)}
    if selection is not None:
        meta["head"] = selection
    if tta is not None:
        meta["tta"] = tta
    write_json(out_classes, meta)


def load_full_model(path):
    """Load an exported model (safe mode), keras-hub's layers included when it holds a keras-hub
    backbone."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        if b"keras_hub" in archive.read("config.json"):
            import keras_hub  # noqa: F401  (registers the layers of a keras-hub backbone)
    return keras.saving.load_model(path, safe_mode=True)


def list_images(folder, key: str = "predict.dir") -> list[Path]:
    """The image files below a folder, sorted; ValueError naming `key` (where the folder was given)
    when it does not exist or holds none."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{key}: folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"{key}: no images in {root}")
    return files


def usable_images(files, key: str = "predict.dir") -> tuple[list[Path], list[tuple[str, str]]]:
    """(files that decode, [(path, reason)] of those that do not), each file checked once."""
    from concurrent.futures import ThreadPoolExecutor

    from augcache.data.dataset import check_image

    with ThreadPoolExecutor(max_workers=4) as pool:
        reasons = [reason for _, reason in pool.map(lambda p: check_image(str(p)), files)]
    good = [f for f, reason in zip(files, reasons, strict=True) if not reason]
    bad = [(str(f), reason) for f, reason in zip(files, reasons, strict=True) if reason]
    for path, reason in bad:
        log.warning("%s: %s; left out", path, reason)
    if not good:
        raise ValueError(f"{key}: none of the {len(files)} images below {Path(files[0]).parent} can be "
                         "read: " + "; ".join(f"{p}: {r}" for p, r in bad[:5]))
    return good, bad


def predict_folder(model_path, classes_path, folder, batch_size: int = 64, top_k: int = 1,
                   probabilities: bool = False, folder_key: str = "predict.dir", tta_views: int = 0) -> pd.DataFrame:
    """:func:`predict_files` for every image below `folder`.

    Files that do not decode (corrupt, too many pixels, not images) are left out and logged with
    their reasons, so one bad file does not stop the others. folder_key names where the folder
    was given, for the errors.
    """
    files, _ = usable_images(list_images(folder, folder_key), folder_key)
    return predict_files(model_path, classes_path, files, batch_size, top_k, probabilities, tta_views)


def image_probabilities(model_path, classes_path, files, batch_size: int = 64, tta_views: int = 0,
                        sample_ids=None) -> np.ndarray:
    """(n, classes) probabilities of the exported model for each image file, decoded as its
    classes.json says (pixel size, resize policy, input size).

    tta_views: V > 0 averages the probabilities of each image and of V augmented views of it,
    drawn as the workflow draws the validation images' views (the augmentation and seed in
    classes.json; view v's numbers from (seed, v) and the images' sample ids, by default their
    paths, see :func:`augcache.augmentation.manifest.view_manifest`).
    """
    from augcache.evaluation.metrics import tta_probabilities

    return tta_probabilities(*image_views(model_path, classes_path, files, batch_size, tta_views, sample_ids))


def image_views(model_path, classes_path, files, batch_size: int = 64, tta_views: int = 0,
                sample_ids=None) -> tuple[np.ndarray, list[np.ndarray]]:
    """(probabilities of the images as they are, [those of each test-time view]); see
    :func:`image_probabilities`."""
    from augcache.augmentation.manifest import AugmentConfig, view_manifest

    meta = json.loads(Path(classes_path).read_text())
    size = tuple(meta["image_size"])
    model = load_full_model(model_path)
    ids = [str(p) for p in (files if sample_ids is None else sample_ids)]
    table = pd.DataFrame({"sample_id": ids, "path": [str(p) for p in files], "label": "", "label_index": 0})
    pixels = Pixels(meta.get("pixel_size", size), meta.get("resize", "stretch"))

    def predict(rows: pd.DataFrame, resampling=None) -> np.ndarray:
        batches = augmented_batches(rows, pixels, size, batch_size, *([resampling] if resampling else []))
        return np.concatenate([model.predict_on_batch(images) for images in batches])

    plain_rows = table.copy()
    for name, value in zip(PARAM_COLUMNS, IDENTITY_PARAMS):
        plain_rows[name] = value
    plain = predict(plain_rows)
    if not tta_views:
        return plain, []
    if "tta" not in meta:
        raise ValueError(f"{classes_path}: no test-time augmentation recorded (exported by an older version); "
                         "export the model again to use test-time views")
    aug = AugmentConfig.from_config(meta["tta"]["augment"])
    views = []
    for view in range(tta_views):
        rows = view_manifest(table, aug, int(meta["tta"]["seed"]), view, tuple(meta.get("pixel_size", size)))
        # back to the files' order
        rows = rows.set_index("sample_id").loc[ids].reset_index()
        views.append(predict(rows, aug.resampling))
    return plain, views


def predict_files(model_path, classes_path, files, batch_size: int = 64, top_k: int = 1,
                  probabilities: bool = False, tta_views: int = 0) -> pd.DataFrame:
    """path, label and probability of the most probable class of each image file (decoded as the
    exported model's classes.json says: pixel size, resize policy, input size); with top_k > 1
    also label_i, probability_i of the i-th most probable (i = 2..top_k, at most the number of
    classes); with probabilities, every class's probability as probability_<class>; with
    tta_views, probabilities averaged over test-time views (see :func:`image_probabilities`)."""
    classes = json.loads(Path(classes_path).read_text())["classes"]
    scores = image_probabilities(model_path, classes_path, files, batch_size, tta_views)
    # most probable first; equal probabilities in class order
    ranked = np.argsort(-scores, axis=1, kind="stable")
    rows = np.arange(len(files))
    out = {"path": [str(p) for p in files]}
    for i in range(min(top_k, len(classes))):
        suffix = "" if i == 0 else f"_{i + 1}"
        out[f"label{suffix}"] = [classes[c] for c in ranked[:, i]]
        out[f"probability{suffix}"] = scores[rows, ranked[:, i]]
    if probabilities:
        for c, name in enumerate(classes):
            out[f"probability_{name}"] = scores[:, c]
    return pd.DataFrame(out)


def score_split(model_path, classes_path, index: pd.DataFrame, split: str = "test",
                batch_size: int = 64, tta_views: int = 0) -> dict:
    """The exported model on the index's images of one split (each image once): accuracy,
    macro-averaged accuracy, per-class recall and confusion matrix (see
    :func:`augcache.evaluation.metrics.class_report`); with tta_views, the same with test-time views
    (drawn from the images' sample ids) under "tta"."""
    from augcache.evaluation.metrics import class_report, tta_probabilities

    rows = index[index["split"] == split]
    if rows.empty:
        raise ValueError(f"the index has no {split} images")
    classes = json.loads(Path(classes_path).read_text())["classes"]
    unknown = sorted(set(rows["label"]) - set(classes))
    if unknown:
        raise ValueError(f"{split} images of classes the model does not know: {', '.join(unknown)}")
    true = rows["label"].map({name: number for number, name in enumerate(classes)}).to_numpy()
    plain, views = image_views(model_path, classes_path, rows["path"].tolist(), batch_size, tta_views,
                               rows["sample_id"].tolist())
    out = {"split": split, **class_report(true, plain, classes)}
    if tta_views:
        out["tta"] = {"views": tta_views, **class_report(true, tta_probabilities(plain, views), classes)}
    return out
