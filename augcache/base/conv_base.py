"""The frozen conv base: built by name or loaded from a .keras file, always called in inference mode."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from augcache.base.pooling import MAP_POOLING, normalised, pool_map
from augcache.core import backend


@dataclass(frozen=True)
class BaseSpec:
    """What the conv base is.

    architecture: a ``keras.applications`` class name (``MobileNetV2``, ``VGG16``, …), the
        path of a ``.keras`` model file, or ``keras_hub`` (a backbone from ``preset``).
    weights: None (random, seeded), ``"imagenet"``, or a weights file path (applications only).
    pooling: None keeps the conv map; ``"avg"`` or ``"max"`` pool it to a vector; for a
        transformer backbone ``"cls"`` or ``"mean"`` (see :mod:`augcache.base.hub`), None its patch grid.
    preset: with architecture ``keras_hub``, a keras-hub preset folder or handle.
    preprocessing: with a preset, how pixels are scaled for it when the preset has no image
        converter: ``{scale, offset}`` or ``{mean, std}`` (see :func:`augcache.base.hub.preprocessing_scale`).
    image_size: (height, width) of the images fed to the base.
    options: extra keyword arguments of the application constructor (e.g. ``alpha``).
    layer: for a ``.keras`` file, the name of the layer whose output is the feature (optional).
    split_at: the layer the base is cut at for fine-tuning (config ``conv_base.split``; not the
        data's train/val split): the cache holds its output (the ``bottom``'s), and the layers after
        it (the ``top``) are trained with the head.
    seed: initialises random weights when ``weights`` is None.
    resize: how images are brought to image_size (``stretch``, ``crop`` or ``pad``).
    compute_dtype: Keras dtype policy the base computes in: ``float32``, or ``mixed_bfloat16`` /
        ``mixed_float16`` (float32 weights, half-precision compute; features come out as float32).
    """

    architecture: str
    image_size: tuple[int, int]
    weights: str | None = None
    pooling: str | None = None
    options: dict = field(default_factory=dict)
    layer: str | None = None
    split_at: str | None = None
    seed: int = 0
    resize: str = "stretch"
    compute_dtype: str = "float32"
    preset: str | None = None
    preprocessing: dict | None = None
    # where a job reads the files of `files` (its inputs: a variant's lie below its folder), by config
    # key; not part of what the base is (provenance names the configured paths)
    located_files: tuple = field(default=(), compare=False, repr=False)

    @classmethod
    def from_config(cls, cfg: dict) -> "BaseSpec":
        """From the ``conv_base`` config section plus ``image_size`` and ``seed``."""
        return cls(
            architecture=str(cfg["architecture"]),
            image_size=tuple(int(s) for s in cfg["image_size"]),
            weights=cfg.get("weights"),
            pooling=normalised(cfg.get("pooling")),
            options=dict(cfg.get("options") or {}),
            layer=cfg.get("layer"),
            split_at=cfg.get("split"),
            seed=int(cfg.get("seed", 0)),
            resize=str(cfg.get("resize", "stretch")),
            compute_dtype=str(cfg.get("compute_dtype", "float32")),
            preset=cfg.get("preset"),
            preprocessing=cfg.get("preprocessing"),
        )

    @property
    def is_model_file(self) -> bool:
        return self.architecture.endswith(".keras")

    @property
    def is_hub(self) -> bool:
        """A keras-hub backbone from a preset (see :mod:`augcache.base.hub`)."""
        return self.architecture == HUB

    @property
    def weights_file(self) -> str | None:
        """The weights file an application loads (None for random or ImageNet weights)."""
        return None if self.weights in (None, "imagenet") else str(self.weights)

    @property
    def files(self) -> dict[str, str]:
        """The files the base is made from, by the config key that names them (model file first)."""
        files = {}
        if self.is_model_file:
            files["conv_base.architecture"] = self.architecture
        if self.weights_file:
            files["conv_base.weights"] = self.weights_file
        return files

    def located(self, paths) -> "BaseSpec":
        """This base, its files read from `paths` (a job's inputs, in the order of :attr:`files`;
        more paths, a preset's files, may follow) instead of the configured paths."""
        return replace(self, located_files=tuple(zip(self.files, map(str, paths))))

    def file_path(self, key: str) -> str:
        """Where the file of config key `key` (see :attr:`files`) is read."""
        return dict(self.located_files).get(key, self.files[key])


# conv_base.architecture of a keras-hub backbone
HUB = "keras_hub"


def application(name: str):
    """(constructor, preprocess_input) of a keras.applications model by class name."""
    import keras

    constructor = getattr(keras.applications, name, None)
    if constructor is None or not callable(constructor) or name[0].islower():
        raise ValueError(
            f"conv_base.architecture: {name!r} is neither a keras.applications model "
            f"(e.g. MobileNetV2, VGG16, ResNet50), a .keras file nor {HUB} (with conv_base.preset)"
        )
    preprocess = getattr(sys.modules[constructor.__module__], "preprocess_input")
    return constructor, preprocess


def _identity(images):
    return images


def _load_model_file(spec: BaseSpec):
    import keras

    path = Path(spec.file_path("conv_base.architecture"))
    if not path.is_file():
        raise ValueError(f"conv_base.architecture: model file {path} does not exist")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as err:
        if "safe_mode" in str(err) or "Lambda" in str(err):
            raise ValueError(
                f"conv_base.architecture: {path} contains a Lambda layer or other code; it is refused "
                "because loading it would run code stored in the file. Rebuild the model without "
                "Lambda layers."
            ) from err
        raise ValueError(f"conv_base.architecture: {path} could not be loaded: {err}") from err
    if spec.layer:
        try:
            model = keras.Model(model.inputs, model.get_layer(spec.layer).output)
        except ValueError as err:
            raise ValueError(f"conv_base.layer: {path} has no layer named {spec.layer!r}") from err
    want = (*spec.image_size, 3)
    have = tuple(model.input_shape[1:])
    if any(h is not None and h != w for h, w in zip(have, want)):
        raise ValueError(
            f"conv_base.architecture: {path} takes inputs of shape {have}, "
            f"but data.image_size gives {want}"
        )
    return pool_map(model, spec.pooling), _identity


COMPUTE_DTYPES = ("float32", "mixed_bfloat16", "mixed_float16")


def with_policy(model, policy: str):
    """A copy of a loaded model whose layers, those of nested models too, compute under `policy`
    (same float32 weights)."""
    import keras

    def clone(layer):
        if isinstance(layer, keras.Model):
            return with_policy(layer, policy)
        config = layer.get_config()
        config["dtype"] = keras.DTypePolicy(policy) if not isinstance(layer, keras.layers.InputLayer) \
            else config.get("dtype")
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def build_base(spec: BaseSpec):
    """Return (model, preprocess): a frozen model and its ``preprocess_input``.

    Inputs to ``preprocess`` are float32 RGB pixels in [0, 255]; for a ``.keras`` file the
    pixels are passed unchanged (the model holds its own rescaling). The model computes under
    spec.compute_dtype.
    """
    import keras

    if spec.compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"cache.compute_dtype must be one of {COMPUTE_DTYPES}, got {spec.compute_dtype!r}")
    keras.utils.set_random_seed(spec.seed)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(spec.compute_dtype)
    try:
        model, preprocess = _build(spec)
    finally:
        keras.config.set_dtype_policy(previous)
    model.trainable = False
    return model, preprocess


def _build(spec: BaseSpec):
    if spec.is_hub:
        from augcache.base.hub import build_hub_base

        return build_hub_base(spec)
    if spec.pooling not in MAP_POOLING:
        raise ValueError(f"conv_base.pooling: {spec.pooling!r} is for transformer backbones "
                         f"(architecture {HUB}); use avg, max or null")
    if spec.is_model_file:
        model, preprocess = _load_model_file(spec)
        if spec.compute_dtype != "float32":
            model = with_policy(model, spec.compute_dtype)
    else:
        constructor, preprocess = application(spec.architecture)
        weights = spec.file_path("conv_base.weights") if spec.weights_file else spec.weights
        if spec.weights_file and not Path(weights).is_file():
            raise ValueError(f"conv_base.weights: weights file {weights} does not exist")
        try:
            model = constructor(
                include_top=False,
                weights=weights,
                input_shape=(*spec.image_size, 3),
                pooling=spec.pooling,
                **spec.options,
            )
        except (ValueError, OSError) as err:
            if spec.weights_file:
                raise ValueError(
                    f"conv_base.weights: {weights} does not fit {spec.architecture} "
                    f"(options {spec.options}, input {(*spec.image_size, 3)}): {err}"
                ) from err
            raise ValueError(
                f"conv_base: {spec.architecture} with weights={weights!r} and options {spec.options}: {err}"
            ) from err
    return model, preprocess


def split_base(model, name: str):
    """(bottom, top): the base cut at layer `name`. bottom maps the base's input to that layer's
    output; top maps that output to the base's output. They share the base's layers (and weights).

    A layer can be cut at when everything after it depends on the base's input only through its
    output, one tensor; otherwise ValueError lists the last layers that can.
    """
    import keras

    names = [layer.name for layer in model.layers]
    if name not in names:
        raise ValueError(f"conv_base.split: the base has no layer named {name!r}; "
                         f"layers it can be split at: {_split_choices(model)}")
    if name == names[-1]:
        raise ValueError(f"conv_base.split: {name!r} is the base's last layer, so nothing would be "
                         f"left to fine-tune; layers it can be split at: {_split_choices(model)}")
    output = model.get_layer(name).output
    if not isinstance(output, keras.KerasTensor) or name == names[0]:
        raise ValueError(f"conv_base.split: {name!r} cannot be split at; layers it can be split at: "
                         f"{_split_choices(model)}")
    try:
        top = keras.Model(output, model.output, name=f"{model.name}_top")
    except ValueError as err:
        raise ValueError(
            f"conv_base.split: the layers after {name!r} also read tensors from before it (a residual "
            f"connection), so the base cannot be cut there; layers it can be split at: "
            f"{_split_choices(model)}") from err
    bottom = keras.Model(model.inputs, output, name=f"{model.name}_bottom")
    bottom.trainable = False
    return bottom, top


def _split_choices(model, last: int = 12) -> str:
    """The last `last` layers a model can be split at, comma-separated."""
    import keras

    valid = []
    for layer in model.layers[1:-1]:
        output = layer.output
        if not isinstance(output, keras.KerasTensor):
            continue
        try:
            keras.Model(output, model.output)
        except ValueError:
            continue
        valid.append(layer.name)
    return ", ".join(valid[-last:]) or "none"


def bottom_of(model, split: str | None):
    """The part of a base whose output the cache holds: the base itself, or its bottom when it is
    split (see :func:`split_base`)."""
    return split_base(model, split)[0] if split else model


def build_bottom(spec: BaseSpec):
    """(base, bottom, preprocess): the base and the part of it whose output the cache holds."""
    model, preprocess = build_base(spec)
    return model, bottom_of(model, spec.split_at), preprocess


FLOP_LAYERS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense")


def layer_flops(layer) -> int:
    """Forward multiply-adds x 2 of a conv or dense layer for one sample (0 for other layers)."""
    kind = type(layer).__name__
    if kind not in FLOP_LAYERS:
        return 0
    out = [int(d) for d in layer.output.shape[1:]]
    positions = int(np.prod(out[:-1])) if len(out) > 1 else 1
    if kind == "Dense":
        return 2 * positions * int(layer.input.shape[-1]) * out[-1]
    kernel = int(np.prod(layer.kernel_size))
    channels_in = int(layer.input.shape[-1])
    if kind == "DepthwiseConv2D":
        return 2 * positions * out[-1] * kernel
    if kind == "SeparableConv2D":
        depth = channels_in * int(layer.depth_multiplier)
        return 2 * positions * (depth * kernel + depth * out[-1])
    return 2 * positions * out[-1] * kernel * channels_in // int(getattr(layer, "groups", 1))


def split_shares(model, bottom) -> dict:
    """What share of the base's forward FLOPs (counted over conv and dense layers) and of its
    parameters the bottom holds."""
    inside = {layer.name for layer in bottom.layers}
    flops = {layer.name: layer_flops(layer) for layer in model.layers}
    total_flops = sum(flops.values())
    params = model.count_params()
    return {
        "bottom_flops_share": sum(f for n, f in flops.items() if n in inside) / total_flops if total_flops else 0.0,
        "bottom_parameter_share": bottom.count_params() / params if params else 0.0,
        "forward_flops": int(total_flops),
    }


def fetch_imagenet_weights(spec: BaseSpec, out_path) -> str:
    """Download the ImageNet weights of spec's architecture (conv part) once and save them to
    out_path, for jobs on hosts without internet. Returns the file's sha256."""
    from augcache.core.atomic import atomic_path
    from augcache.core.provenance import sha256_file

    constructor, _ = application(spec.architecture)
    model = constructor(include_top=False, weights="imagenet", input_shape=(*spec.image_size, 3),
                        pooling=spec.pooling, **spec.options)
    with atomic_path(out_path, ".weights.h5") as tmp:
        model.save_weights(tmp)
    return sha256_file(out_path)


def weights_sha256(model) -> str:
    """sha256 over the shapes and bytes of every weight, in model order."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(f"{weight.path}:{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def feature_function(model, preprocess, image_size):
    """A compiled ``images (B, H, W, 3) float32 in [0, 255] -> features`` in inference mode.

    ``training=False`` makes BatchNorm use its moving statistics, so a sample's features do
    not depend on the other samples of its batch. Under a Keras backend other than TensorFlow,
    the backend's own compiled function (:func:`augcache.core.backend.inference`), with the shape of
    one sample's features as its ``feature_shape``.
    """
    if backend.name() != backend.TENSORFLOW:
        run = backend.inference(model, preprocess)
        run.feature_shape = tuple(int(d) for d in model.output.shape[1:])
        return run
    tf = backend.tensorflow()

    spec = tf.TensorSpec((None, *image_size, 3), tf.float32)

    @tf.function(input_signature=[spec])
    def features(images):
        # float32 out whatever the compute dtype, so stores and heads see one type
        return tf.cast(model(preprocess(images), training=False), tf.float32)

    return features


def feature_shape(feature_fn) -> tuple[int, ...]:
    """Shape of one sample's features for a function made by :func:`feature_function`."""
    if hasattr(feature_fn, "feature_shape"):
        return feature_fn.feature_shape
    return tuple(int(d) for d in feature_fn.get_concrete_function().structured_outputs.shape[1:])
