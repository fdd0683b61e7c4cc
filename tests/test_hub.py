"""keras-hub backbones as frozen bases: tiny random ViT and DINOv2 saved as local presets."""

import json

import numpy as np
import pytest

from conftest import SIZE

keras_hub = pytest.importorskip("keras_hub")  # a dependency of the package: never skipped in CI

PATCH = 8
GRID = SIZE // PATCH


@pytest.fixture(scope="session")
def vit_preset(tmp_path_factory):
    """A 2-layer ViT (class token) at 32 px, with an image converter to [-1, 1]."""
    import keras

    keras.utils.set_random_seed(5)
    path = tmp_path_factory.mktemp("presets") / "vit"
    keras_hub.models.ViTBackbone(image_shape=(SIZE, SIZE, 3), patch_size=PATCH, num_layers=2, num_heads=2,
                                 hidden_dim=16, mlp_dim=32).save_to_preset(path)
    keras_hub.layers.ViTImageConverter(image_size=(SIZE, SIZE), scale=1 / 127.5, offset=-1).save_to_preset(path)
    return path


@pytest.fixture(scope="session")
def dino_preset(tmp_path_factory):
    """A 2-layer DINOv2 with 2 register tokens at 32 px, without an image converter."""
    import keras

    keras.utils.set_random_seed(6)
    path = tmp_path_factory.mktemp("presets") / "dinov2"
    keras_hub.models.DINOV2Backbone(patch_size=PATCH, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
                                    num_register_tokens=2, image_shape=(SIZE, SIZE, 3),
                                    position_embedding_shape=(SIZE, SIZE, 3)).save_to_preset(path)
    return path


def hub_spec(preset, pooling):
    from augcache.conv_base import BaseSpec

    return BaseSpec.from_config({"architecture": "keras_hub", "preset": str(preset), "image_size": [SIZE, SIZE],
                                 "pooling": pooling})


def pixels(n=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype(np.float32)


@pytest.mark.parametrize("preset_name, scale, offset, prefix", [("vit_preset", 1 / 127.5, -1.0, 1),
                                                                ("dino_preset", 1 / 255, 0.0, 3)])
def test_each_pooling_is_the_backbones_tokens_taken_apart(request, preset_name, scale, offset, prefix):
    from augcache.conv_base import build_base, feature_function, feature_shape

    preset = request.getfixturevalue(preset_name)
    backbone = keras_hub.models.Backbone.from_preset(str(preset))
    x = pixels()
    tokens = np.asarray(backbone(x * np.float32(scale) + np.float32(offset)))
    assert tokens.shape == (3, prefix + GRID * GRID, 16)
    want = {"cls": tokens[:, 0], "mean": tokens[:, prefix:].mean(axis=1),
            "none": tokens[:, prefix:].reshape(3, GRID, GRID, 16)}
    for pooling, expected in want.items():
        model, preprocess = build_base(hub_spec(preset, pooling))
        features = feature_function(model, preprocess, (SIZE, SIZE))
        assert feature_shape(features) == expected.shape[1:]
        np.testing.assert_allclose(np.asarray(features(x)), expected, rtol=1e-4, atol=1e-5)
        # inference mode: a sample's features do not depend on its batch mates
        np.testing.assert_allclose(np.asarray(features(x[1:2])), expected[1:2], rtol=1e-4, atol=1e-5)


def test_pooling_that_does_not_fit_the_backbone_is_refused_naming_the_key(vit_preset):
    from augcache.conv_base import BaseSpec, build_base

    with pytest.raises(ValueError, match="conv_base.pooling: 'avg' is for CNN backbones; ViTBackbone outputs tokens"):
        build_base(hub_spec(vit_preset, "avg"))
    with pytest.raises(ValueError, match="conv_base.pooling: 'cls' is for transformer backbones"):
        build_base(BaseSpec(architecture="MobileNetV2", image_size=(SIZE, SIZE), pooling="cls",
                            options={"alpha": 0.35}))


def test_missing_or_wrong_presets_stop_the_workflow_naming_the_key(tmp_path, tiny_data, tiny_base):
    from augcache.settings import SCHEMA, Settings
    from conftest import tiny_config
    from snakemake.utils import validate

    def check(conv_base):
        config = tiny_config(tiny_data, tiny_base, conv_base=conv_base)
        for section in ("demo", "train"):
            config.setdefault(section, {})
        validate(config, str(SCHEMA), set_default=True)
        Settings(config).check()

    with pytest.raises(ValueError, match="conv_base.preset: architecture keras_hub needs a preset"):
        check({"architecture": "keras_hub"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=f"conv_base.preset: '{tmp_path / 'empty'}' is not a keras-hub preset"):
        check({"architecture": "keras_hub", "preset": str(tmp_path / "empty")})


def test_the_presets_files_are_hashed_into_provenance(vit_preset, tmp_path):
    import shutil

    from augcache.manifest import AugmentConfig
    from augcache.settings import CacheSettings
    from augcache.store.features import config_provenance

    fields = config_provenance(hub_spec(vit_preset, "cls"), AugmentConfig(), CacheSettings())
    assert fields["base_preset"] == str(vit_preset) and len(fields["preset_sha256"]) == 64
    changed = tmp_path / "vit"
    shutil.copytree(vit_preset, changed)
    converter = json.loads((changed / "image_converter.json").read_text())
    converter["config"]["scale"] = 1 / 255
    (changed / "image_converter.json").write_text(json.dumps(converter))
    assert config_provenance(hub_spec(changed, "cls"), AugmentConfig(), CacheSettings())["preset_sha256"] \
        != fields["preset_sha256"]


def test_an_epoch_is_extracted_through_a_hub_backbone_as_the_replayed_augmentation(float32_runs, vit_preset,
                                                                                 tmp_path):
    """The package's extraction path, on the shared run's manifest and pixel store, with a ViT's
    patch grid as spatial features."""
    from augcache.cache import extract_epoch
    from augcache.conv_base import build_base, feature_function
    from augcache.extract import compute_features
    from augcache.manifest import AugmentConfig, read_manifest
    from augcache.pixels import open_pixels
    from augcache.settings import CacheSettings
    from augcache.store.features import read_attrs, read_rows

    config, (flow, _) = float32_runs
    spec = hub_spec(vit_preset, "none")
    aug = AugmentConfig.from_config(config["augment"])
    store = tmp_path / "epoch_1.h5"
    manifest = flow.path("results/manifest/epoch_1.csv")
    open_store = lambda: open_pixels((SIZE, SIZE), "stretch", flow.path("results/dataset/pixels.h5"),  # noqa: E731
                                     flow.path("results/dataset/index.csv"))
    extract_epoch(manifest, store, epoch=1, spec=spec, aug=aug, settings=CacheSettings(dtype="float32", batch_size=4),
                  pixels=open_store())
    import h5py

    with h5py.File(store, "r") as handle:
        stored = read_rows(handle)
    attrs = read_attrs(store)
    assert stored.shape[1:] == (GRID, GRID, 16)
    assert attrs["base_architecture"] == "keras_hub" and attrs["base_preset"] == str(vit_preset)
    model, preprocess = build_base(spec)
    replayed = compute_features(read_manifest(manifest), open_store(), feature_function(model, preprocess, (SIZE, SIZE)),
                                (SIZE, SIZE), 4, aug.resampling)
    np.testing.assert_allclose(stored, replayed, rtol=1e-5, atol=1e-5)


def test_an_exported_hub_model_is_the_backbone_then_the_head(vit_preset, tmp_path):
    import keras

    from augcache.conv_base import build_base, feature_function
    from augcache.full_model import build_full_model, load_full_model
    from augcache.head import HeadConfig, build_head

    spec = hub_spec(vit_preset, "mean")
    head = build_head((16,), 3, HeadConfig(hidden_units=(8,)), seed=0)
    full = build_full_model(spec, head)
    x = pixels(4, seed=1)
    model, preprocess = build_base(spec)
    want = head(np.asarray(feature_function(model, preprocess, (SIZE, SIZE))(x)))
    np.testing.assert_allclose(np.asarray(full(x)), np.asarray(want), rtol=1e-4, atol=1e-5)
    full.save(tmp_path / "model.keras")
    loaded = load_full_model(tmp_path / "model.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(want), rtol=1e-4, atol=1e-5)
    assert isinstance(loaded, keras.Model)
