"""Extraction under Keras' JAX backend (on the CPU): the same augmentation and the same epoch
features as TensorFlow within rounding, and recorded as made by JAX."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from augcache.augmentation.params import COLUMN, IDENTITY, PARAM_COLUMNS, Resampling
from conftest import ROOT, WITHOUT_TENSORFLOW

# Largest difference from TensorFlow, in pixel levels (0-255) and relative to the largest feature.
PIXEL_TOLERANCE = 0.02
FEATURE_TOLERANCE = 1e-4

RESAMPLINGS = {"nearest": Resampling(), "reflect": Resampling("reflect"),
               "constant_nearest": Resampling("constant", 7.0, "nearest")}


def varied_params(n: int, seed: int = 0) -> np.ndarray:
    """n rows that move every parameter column; every fourth row the identity."""
    rng = np.random.default_rng(seed)
    rows = np.tile(np.array([IDENTITY[c] for c in PARAM_COLUMNS], np.float32), (n, 1))
    ranges = {"rotation": (-30, 30), "width_shift": (-0.2, 0.2), "height_shift": (-0.2, 0.2),
              "shear": (-10, 10), "zoom_x": (0.8, 1.2), "zoom_y": (0.8, 1.2), "brightness": (0.7, 1.3),
              "channel_shift": (-20, 20), "contrast": (0.7, 1.3), "saturation": (0.7, 1.3),
              "hue": (-0.1, 0.1), "erase_value": (0, 255)}
    for name, (low, high) in ranges.items():
        rows[:, COLUMN[name]] = rng.uniform(low, high, n)
    for name in ("flip_horizontal", "flip_vertical"):
        rows[:, COLUMN[name]] = rng.integers(0, 2, n)
    for box, (low, high) in (("crop", (0.6, 1.0)), ("erase", (0.1, 0.4))):
        height, width = rng.uniform(low, high, n), rng.uniform(low, high, n)
        rows[:, COLUMN[f"{box}_height"]], rows[:, COLUMN[f"{box}_width"]] = height, width
        rows[:, COLUMN[f"{box}_top"]] = rng.uniform(0, 1, n) * (1 - height)
        rows[:, COLUMN[f"{box}_left"]] = rng.uniform(0, 1, n) * (1 - width)
    rows[::4] = [IDENTITY[c] for c in PARAM_COLUMNS]
    return rows


def run_under(backend: str, code: str, *args, cwd=None) -> subprocess.CompletedProcess:
    """python -c code args, with KERAS_BACKEND=backend."""
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True)


# (resampling, resized to) pairs: every fill mode but wrap, both interpolations, with and without a resize
CASES = (("nearest", None), ("reflect", (32, 36)), ("constant_nearest", None))

AUGMENT = """
import sys, numpy as np, keras
from test_backends import CASES, RESAMPLINGS, varied_params
from augcache.augmentation.augment import augment
from augcache.core import backend
images = np.random.default_rng(3).uniform(0, 255, (12, 40, 48, 3)).astype(np.float32)
params = varied_params(12)
out = {}
for name, size in CASES:
    step = backend.jax_jit(lambda x, p, r=RESAMPLINGS[name], s=size: augment(x, p, r, s))  # as extraction runs it
    out[name] = keras.ops.convert_to_numpy(step(images, params))
np.savez(sys.argv[1], **out)
print(keras.backend.backend(), "tensorflow" in sys.modules)
"""


def test_the_augmentation_under_jax_equals_tensorflows(tmp_path):
    from augcache.augmentation.augment import augment

    images = np.random.default_rng(3).uniform(0, 255, (12, 40, 48, 3)).astype(np.float32)
    params = varied_params(12)
    path = tmp_path / "jax.npz"
    result = run_under("jax", AUGMENT, path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["jax", "False"]  # computed by JAX, TensorFlow never imported
    under_jax = np.load(path)
    for name, size in CASES:
        tensorflow = augment(images, params, RESAMPLINGS[name], size).numpy()
        difference = np.abs(under_jax[name] - tensorflow).max()
        assert difference <= PIXEL_TOLERANCE, (name, difference)
        assert size is not None or np.abs(tensorflow - images).max() > 10  # the rows moved pixels


def test_wrap_is_refused_outside_tensorflow():
    result = run_under("jax", "import numpy as np\n"
                              "from augcache.augmentation.augment import augment\n"
                              "from augcache.augmentation.params import Resampling\n"
                              "from test_backends import varied_params\n"
                              "augment(np.zeros((2, 8, 8, 3), np.float32), varied_params(2, 1), Resampling('wrap'))")
    assert result.returncode == 1
    assert "augment.fill_mode: wrap is computed as the manifests mean only under TensorFlow" in result.stderr


EXTRACT = """
import sys
from augcache.augmentation.manifest import AugmentConfig
from augcache.base.conv_base import BaseSpec
from augcache.base.store_fields import CacheConfig
from augcache.core.paths import INDEX, PIXELS
from augcache.data.pixels import open_pixels
from augcache.jobs.extraction import extract_epoch
from augcache.jobs.settings import Settings, load_config

settings = Settings(load_config([sys.argv[1], "overlay.yaml"]))
params = settings.extract_params()
extract_epoch("results/manifest/epoch_1.csv", sys.argv[2], epoch=1, spec=BaseSpec.from_config(params["base"]),
              aug=AugmentConfig.from_config(settings.config["augment"]),
              cache=CacheConfig(threads=2, **params["cache"]),
              pixels=open_pixels(params["pixel_size"], params["base"]["resize"], PIXELS, INDEX))
"""


def test_an_epoch_extracted_under_jax_equals_tensorflows_and_is_recorded_as_jax(float32_runs, tmp_path):
    """(Two runs under JAX are byte-identical: tests/test_gpu_check.py.)"""
    from augcache.core.provenance import ProvenanceError
    from augcache.store.features import check_store, read_attrs, read_rows

    def read_features(path):
        with h5py.File(path, "r") as handle:
            return read_rows(handle)

    _, (flow, _) = float32_runs
    store = tmp_path / "epoch_1_jax.h5"
    result = run_under("jax", EXTRACT, ROOT / "config/config.yaml", store, cwd=flow.root)
    assert result.returncode == 0, result.stderr[-3000:]
    made_by_tensorflow = flow.path("results/features/train/epoch_1.h5")
    tensorflow, under_jax = read_features(made_by_tensorflow), read_features(store)
    scale = np.abs(tensorflow).max()
    assert scale > 0 and np.abs(under_jax - tensorflow).max() <= FEATURE_TOLERANCE * scale
    attrs, reference = read_attrs(store), read_attrs(made_by_tensorflow)
    assert attrs["keras_backend"] == "jax" and reference["keras_backend"] == "tensorflow"
    assert {k for k in attrs if attrs[k] != reference[k]} <= {"keras_backend", "seconds", "features_sha256"}
    with pytest.raises(ProvenanceError, match=f"{store}: provenance field 'keras_backend' is 'jax'"):
        check_store(store, {"keras_backend": "tensorflow"})


def test_a_base_with_keras_preprocessing_layers_runs_under_jax_without_tensorflow():
    """Rescaling is one of Keras' data layers, which use TensorFlow only when it is in use."""
    result = run_under("jax", WITHOUT_TENSORFLOW + """
import numpy as np, keras
from augcache.core import backend
model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(2, 3)])
out = backend.inference(model, lambda x: x)(np.full((2, 8, 8, 3), 255, np.float32))
want = model(np.full((2, 8, 8, 3), 255, np.float32))
print(np.allclose(np.asarray(out), np.asarray(want), atol=1e-6), "tensorflow" in sys.modules)
""")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True", "False"]
