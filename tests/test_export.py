"""The exported model is plain Keras: it loads and predicts without this package, and serves as a SavedModel."""

import json
import subprocess
import sys

import numpy as np
import pytest

from augcache.base.conv_base import application
from augcache.training.full_model import export_full_model, load_full_model, preprocess_affine, preprocess_layer


@pytest.mark.parametrize("architecture, mode", [("VGG16", "caffe"), ("MobileNetV2", "tf"),
                                                ("DenseNet121", "torch"), ("EfficientNetB0", "none")])
def test_every_preprocess_mode_is_a_built_in_layer(architecture, mode):
    preprocess = application(architecture)[1]
    images = np.random.default_rng(0).uniform(0, 255, (2, 6, 7, 3)).astype(np.float32)
    layer = preprocess_layer(preprocess)
    if mode == "none":
        assert layer is None
        return
    want = np.asarray(preprocess(images.copy()))
    got = np.asarray(layer(images))
    if mode == "caffe":  # a channel flip and a subtraction: exactly the same numbers
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_non_affine_preprocess_is_refused():
    with pytest.raises(ValueError, match="not a per-pixel affine map"):
        preprocess_affine(lambda x: np.sqrt(x))


LOAD_AND_PREDICT = """
import sys, json
import numpy as np
import keras
model = keras.saving.load_model(sys.argv[1])
probabilities = model.predict(np.load(sys.argv[2]), verbose=0)
print(json.dumps({"augcache_imported": any(m.startswith("augcache") for m in sys.modules),
                  "probabilities": probabilities.tolist()}))
"""


def test_exported_model_loads_and_predicts_without_the_package(tmp_path):
    import keras
    import tensorflow as tf

    from augcache.base.conv_base import BaseSpec
    from augcache.training.head import HeadConfig, build_head

    spec = BaseSpec("VGG16", (32, 32), pooling="avg", seed=1)
    head = build_head((512,), 3, HeadConfig.from_config({"hidden_units": [8]}), seed=0)
    head.save(tmp_path / "head.keras")
    export_full_model(spec, tmp_path / "head.keras", ["a", "b", "c"], tmp_path / "model.keras",
                      tmp_path / "classes.json", out_saved_model=tmp_path / "saved_model")
    images = np.random.default_rng(1).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    here = load_full_model(tmp_path / "model.keras").predict(images, verbose=0)
    assert {type(layer).__module__.split(".")[0] for layer in keras.saving.load_model(
        tmp_path / "model.keras").layers} == {"keras"}

    fresh = subprocess.run([sys.executable, "-I", "-c", LOAD_AND_PREDICT, str(tmp_path / "model.keras"),
                            str(tmp_path / "images.npy")], capture_output=True, text=True, cwd=tmp_path,
                           env={"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin"})
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    result = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert not result["augcache_imported"]
    np.testing.assert_allclose(np.array(result["probabilities"]), here, rtol=1e-5, atol=1e-7)

    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    served = loaded.serve(tf.constant(images)).numpy()
    np.testing.assert_allclose(served, here, rtol=1e-5, atol=1e-7)
    assert json.loads((tmp_path / "classes.json").read_text())["classes"] == ["a", "b", "c"]
