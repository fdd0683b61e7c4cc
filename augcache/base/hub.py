"""keras-hub backbones as frozen bases: ViT, DINOv2/v3, CLIP/SigLIP image encoders, CNNs.

A backbone comes from a preset: a local folder (as ``Backbone.save_to_preset`` writes it) or a
handle keras-hub downloads (``kaggle://…``, ``hf://…``). Its features are pooled with built-in
Keras layers, so a store's base and an exported model are the backbone plus plain layers:

- transformers (outputs (B, tokens, D)): ``cls`` (the class token), ``mean`` (the mean of the
  patch tokens) or ``none`` (the patch tokens as a (H/p, W/p, D) map);
- CNNs (outputs (B, h, w, C)): ``avg``, ``max`` or ``none`` (the map), as keras.applications.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from augcache.base.pooling import MAP_POOLING, TOKEN_POOLING, pool_map, pool_tokens

log = logging.getLogger(__name__)


def is_handle(preset: str) -> bool:
    """A preset keras-hub downloads (kaggle://, hf://, …) rather than a local folder."""
    return "://" in preset


def preset_files(preset: str | None) -> list[str]:
    """The files of a local preset folder, sorted (none for a handle)."""
    if not preset or is_handle(preset):
        return []
    return sorted(str(p) for p in Path(preset).rglob("*") if p.is_file())


# the file Backbone's image converter (ImageConverter.save_to_preset) writes into a preset folder
CONVERTER_FILE = "image_converter.json"


def check_preset(preset: str | None, preprocessing: dict | None = None) -> None:
    """ValueError, naming conv_base.preset, when it is missing, names no preset folder, or names a
    folder without an image converter while conv_base.preprocessing does not say how its pixels
    are scaled."""
    if not preset:
        raise ValueError("conv_base.preset: architecture keras_hub needs a preset (a folder written by "
                         "Backbone.save_to_preset, or a kaggle:// or hf:// handle)")
    if is_handle(preset):
        check_pinned(preset)
        return
    if not (Path(preset) / "config.json").is_file():
        raise ValueError(f"conv_base.preset: {preset!r} is not a keras-hub preset folder (no config.json "
                         "in it); give a folder written by Backbone.save_to_preset, or a kaggle:// or "
                         "hf:// handle")
    if preprocessing is None and not (Path(preset) / CONVERTER_FILE).is_file():
        raise ValueError(
            f"conv_base.preset: {preset!r} has no image converter ({CONVERTER_FILE}), so how the backbone "
            "expects its pixels scaled is unknown (Backbone.save_to_preset does not write it). Save the "
            "converter into the folder too (keras_hub.layers.ImageConverter.from_preset(handle)"
            ".save_to_preset(folder)), or state the scaling in conv_base.preprocessing: {scale, offset} "
            "(model input = pixel in [0, 255] * scale + offset) or {mean, std} (of pixels in [0, 1])")


# A handle's results are keyed by its text, so its text must name one version of the files.
SAVE_AS_FOLDER = ("or save it once as a folder (keras_hub.models.Backbone.from_preset(handle).save_to_preset(folder) "
                  "and keras_hub.layers.ImageConverter.from_preset(handle).save_to_preset(folder)) and give the "
                  "folder, whose files key every result")


def check_pinned(handle: str) -> None:
    """ValueError, naming conv_base.preset, for a handle that does not name one version of its
    files: its weights could change upstream under the same text, while the base check, the
    stores and the heads made with the old ones would still be reused. A Kaggle handle needs its
    version (kaggle://org/model/framework/variation/version); a Hugging Face handle cannot be
    pinned in keras-hub."""
    scheme, _, rest = handle.partition("://")
    parts = rest.strip("/").split("/")
    if scheme == "kaggle" and len(parts) == 5 and parts[-1].isdigit():
        return
    if scheme == "kaggle":
        raise ValueError(f"conv_base.preset: {handle!r} names no version, so its weights may change upstream "
                         f"while results made with the old ones are reused; pin it as "
                         f"kaggle://org/model/framework/variation/version (e.g. {handle.rstrip('/')}/1, the versions "
                         f"are listed on its Kaggle page), {SAVE_AS_FOLDER}")
    raise ValueError(f"conv_base.preset: {handle!r} cannot be pinned to a version ({scheme}:// handles are loaded "
                     f"as they are upstream now), so results made with older weights would be reused; use a "
                     f"kaggle:// handle with its version, {SAVE_AS_FOLDER}")


def preprocessing_scale(preprocessing: dict) -> tuple:
    """(scale, offset) of conv_base.preprocessing: {scale, offset} as given (pixels in [0, 255]),
    or {mean, std} of pixels in [0, 1] (input = (pixel / 255 - mean) / std)."""
    if "mean" in preprocessing:
        mean = np.asarray(preprocessing["mean"], np.float64)
        std = np.asarray(preprocessing["std"], np.float64)
        return 1.0 / (255.0 * std), -mean / std
    return preprocessing["scale"], preprocessing.get("offset", 0.0)


def preset_sha256(preset: str) -> str:
    """sha256 over the relative names and bytes of a local preset's files; for a handle, of the
    handle (the weights themselves are hashed by the built model's weights_sha256)."""
    from augcache.core.paths import HASH_MEMO
    from augcache.core.provenance import file_sha256

    digest = hashlib.sha256()
    if is_handle(preset):
        digest.update(f"handle:{preset}".encode())
    for path in preset_files(preset):
        digest.update(f"{Path(path).relative_to(preset)}:{file_sha256(path, HASH_MEMO)};".encode())
    return digest.hexdigest()


def _keras_hub():
    """The keras_hub module; ValueError naming conv_base.architecture where it is not installed."""
    try:
        import keras_hub
    except ImportError as err:
        raise ValueError(f"conv_base.architecture: keras_hub needs keras-hub, which is not installed here ({err}): "
                         "pip install 'augcache[hub]'") from err
    return keras_hub


def _pixel_scale(preset: str, preprocessing: dict | None = None):
    """(scale, offset) mapping pixels in [0, 255] to the backbone's inputs: conv_base.preprocessing
    when given, else the preset's image converter's; ValueError naming conv_base.preset when the
    preset has none."""
    if preprocessing is not None:
        return preprocessing_scale(preprocessing)
    keras_hub = _keras_hub()
    try:
        converter = keras_hub.layers.ImageConverter.from_preset(preset)
    except (ValueError, FileNotFoundError, OSError) as err:
        raise ValueError(f"conv_base.preset: {preset} has no image converter ({err}); state how its pixels "
                         "are scaled in conv_base.preprocessing ({scale, offset} or {mean, std})") from err
    scale = 1.0 if converter.scale is None else converter.scale
    offset = 0.0 if converter.offset is None else converter.offset
    return scale, offset


def load_backbone(preset: str, image_size, compute_dtype: str):
    """The preset's backbone taking images of image_size (H, W) under compute_dtype."""
    keras_hub = _keras_hub()
    shape = (*image_size, 3)
    try:
        return keras_hub.models.Backbone.from_preset(preset, image_shape=shape, dtype=compute_dtype)
    except TypeError:  # a backbone without an image_shape argument
        backbone = keras_hub.models.Backbone.from_preset(preset, dtype=compute_dtype)
    except (ValueError, OSError) as err:
        raise ValueError(f"conv_base.preset: {preset} could not be loaded for images of {shape} "
                         f"(data.image_size): {err}") from err
    have = tuple(backbone.input_shape[1:]) if not isinstance(backbone.input_shape, dict) else None
    if have and any(h is not None and h != w for h, w in zip(have, shape)):
        raise ValueError(f"conv_base.preset: {preset} takes images of shape {have}, but data.image_size "
                         f"gives {shape}")
    return backbone


def _patch_grid(backbone, image_size) -> tuple[int, int]:
    patch = getattr(backbone, "patch_size", None)
    if patch is None:
        raise ValueError(f"conv_base.preset: {type(backbone).__name__} outputs tokens but names no "
                         "patch_size, so its patch grid is unknown")
    ph, pw = (patch, patch) if isinstance(patch, int) else tuple(patch)
    return image_size[0] // ph, image_size[1] // pw


def _called(backbone, image_size):
    """(images input, backbone output): the backbone called as one layer, so that a saved model
    holds it by its own config (as its preset does)."""
    import keras

    images = keras.Input((*image_size, 3), name="images")
    structure = backbone.input
    output = backbone({next(iter(structure)): images} if isinstance(structure, dict) else images)
    return images, output


def pooled(backbone, pooling: str | None, image_size):
    """backbone -> a model whose output is its pooled features (see the module's docstring);
    ValueError naming conv_base.pooling for a choice that does not fit the backbone's output."""
    import keras

    images, output = _called(backbone, image_size)
    name = type(backbone).__name__
    if len(output.shape) == 4:
        if pooling not in MAP_POOLING:
            raise ValueError(f"conv_base.pooling: {pooling!r} is for transformer backbones; "
                             f"{name} outputs a feature map: use avg, max or none")
        return pool_map(keras.Model(images, output, name=backbone.name), pooling)
    if len(output.shape) != 3:
        raise ValueError(f"conv_base.preset: backbone output of shape {output.shape} is neither tokens "
                         "(B, tokens, D) nor a feature map (B, h, w, C)")
    if pooling not in TOKEN_POOLING:
        raise ValueError(f"conv_base.pooling: {pooling!r} is for CNN backbones; "
                         f"{name} outputs tokens: use cls, mean or none")
    tokens = int(output.shape[1])
    grid_h, grid_w = _patch_grid(backbone, image_size)
    prefix = tokens - grid_h * grid_w
    if prefix < 0 or (pooling == "cls" and prefix < 1):
        raise ValueError(f"conv_base.pooling: {name} outputs {tokens} tokens for a {grid_h}x{grid_w} patch "
                         "grid, " + ("so it has no class token: use mean or none" if prefix >= 0 else
                                     "which does not fit data.image_size"))
    x = pool_tokens(output, pooling, prefix, (grid_h, grid_w))
    return keras.Model(images, x, name=f"{backbone.name}_{pooling or 'grid'}")


def build_hub_base(spec):
    """(model, preprocess) of a keras-hub preset (see :class:`augcache.base.conv_base.BaseSpec`):
    preprocess maps pixels in [0, 255] to the backbone's inputs by conv_base.preprocessing or its
    image converter's scale and offset (the images already have spec.image_size)."""
    check_preset(spec.preset, spec.preprocessing)
    backbone = load_backbone(spec.preset, spec.image_size, spec.compute_dtype)
    model = pooled(backbone, spec.pooling, spec.image_size)
    scale, offset = (np.asarray(v, np.float32) for v in _pixel_scale(spec.preset, spec.preprocessing))

    def preprocess(images):
        return images * scale + offset

    return model, preprocess
