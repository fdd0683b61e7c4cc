import numpy as np
import pytest

from augcache.base.conv_base import BaseSpec, build_base, feature_function, weights_sha256
from conftest import SIZE, conv_base_model


def test_features_of_a_sample_do_not_depend_on_its_batch_mates(tiny_base):
    model, preprocess = build_base(BaseSpec(str(tiny_base), (SIZE, SIZE)))
    features = feature_function(model, preprocess, (SIZE, SIZE))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32)
    mates_a = rng.uniform(0, 255, (5, SIZE, SIZE, 3)).astype(np.float32)
    mates_b = rng.uniform(0, 80, (2, SIZE, SIZE, 3)).astype(np.float32)
    alone = features(x).numpy()[0]
    in_a = features(np.concatenate([mates_a, x])).numpy()[-1]
    in_b = features(np.concatenate([x, mates_b])).numpy()[0]
    np.testing.assert_allclose(in_a, alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(in_b, alone, rtol=1e-5, atol=1e-6)
    # The same, unfrozen, base in training mode would normalise with batch statistics.
    import keras

    unfrozen = keras.saving.load_model(tiny_base)
    trained = unfrozen(np.concatenate([x, mates_b]), training=True).numpy()[0]
    assert np.abs(trained - alone).max() > 1e-3


def test_random_weights_are_seeded():
    spec = BaseSpec("MobileNetV2", (32, 32), options={"alpha": 0.35}, seed=5)
    assert weights_sha256(build_base(spec)[0]) == weights_sha256(build_base(spec)[0])
    other = BaseSpec("MobileNetV2", (32, 32), options={"alpha": 0.35}, seed=6)
    assert weights_sha256(build_base(spec)[0]) != weights_sha256(build_base(other)[0])


def test_application_pooling_gives_vectors():
    model, _ = build_base(BaseSpec("MobileNetV2", (32, 32), pooling="avg", options={"alpha": 0.35}))
    assert len(model.output.shape) == 2


def test_unknown_architecture_is_refused_with_its_key():
    with pytest.raises(ValueError, match="conv_base.architecture: 'NotANet'"):
        build_base(BaseSpec("NotANet", (32, 32)))


def test_missing_weights_file_is_named(tmp_path):
    missing = tmp_path / "nope.weights.h5"
    with pytest.raises(ValueError, match=f"conv_base.weights: .*{missing}"):
        build_base(BaseSpec("MobileNetV2", (32, 32), weights=str(missing)))


def test_model_file_with_another_input_size_is_refused(tiny_base):
    with pytest.raises(ValueError, match="data.image_size"):
        build_base(BaseSpec(str(tiny_base), (48, 48)))


def test_model_file_with_a_lambda_layer_is_refused_in_safe_mode(tmp_path):
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    outputs = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match="Lambda"):
        build_base(BaseSpec(str(path), (SIZE, SIZE)))


def test_cut_at_a_named_layer(tmp_path):
    model = conv_base_model()
    path = tmp_path / "base.keras"
    model.save(path)
    name = model.layers[2].name
    cut, _ = build_base(BaseSpec(str(path), (SIZE, SIZE), layer=name))
    assert cut.output.shape[1:] == model.layers[2].output.shape[1:]
    with pytest.raises(ValueError, match="conv_base.layer"):
        build_base(BaseSpec(str(path), (SIZE, SIZE), layer="no_such_layer"))
