"""keras-hub backbones as frozen bases: tiny random ViT and DINOv2 saved as local presets."""

import json

import numpy as np
import pytest

import keras_hub

from conftest import PATCH, SIZE

GRID = SIZE // PATCH


# ImageNet's mean and std, as DINOv2 expects its pixels (stated in the config where a preset has no
# image converter)
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def hub_spec(preset, pooling, preprocessing=None):
    from augcache.base.conv_base import BaseSpec

    return BaseSpec.from_config({"architecture": "keras_hub", "preset": str(preset), "image_size": [SIZE, SIZE],
                                 "pooling": pooling, "preprocessing": preprocessing})


def pixels(n=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype(np.float32)


@pytest.mark.parametrize("preset_name, preprocessing, prefix", [("vit_preset", None, 1), ("dino_preset", IMAGENET, 3)])
def test_each_pooling_is_the_backbones_tokens_taken_apart(request, preset_name, preprocessing, prefix):
    """The ViT's pixels scaled by its saved image converter (to [-1, 1]), DINOv2's (saved without
    one) by the config's mean and std: each pooling is the tokens of those pixels taken apart."""
    from augcache.base.conv_base import build_base, feature_function, feature_shape

    preset = request.getfixturevalue(preset_name)
    backbone = keras_hub.models.Backbone.from_preset(str(preset))
    x = pixels()
    if preprocessing is None:
        scale, offset = np.float32(1 / 127.5), np.float32(-1)
    else:
        std = np.asarray(preprocessing["std"], np.float32)
        scale, offset = 1 / (255 * std), -np.asarray(preprocessing["mean"], np.float32) / std
    tokens = np.asarray(backbone(x * scale + offset))
    assert tokens.shape == (3, prefix + GRID * GRID, 16)
    want = {"cls": tokens[:, 0], "mean": tokens[:, prefix:].mean(axis=1),
            "none": tokens[:, prefix:].reshape(3, GRID, GRID, 16)}
    for pooling, expected in want.items():
        model, preprocess = build_base(hub_spec(preset, pooling, preprocessing))
        features = feature_function(model, preprocess, (SIZE, SIZE))
        assert feature_shape(features) == expected.shape[1:]
        np.testing.assert_allclose(np.asarray(features(x)), expected, rtol=1e-4, atol=1e-5)
        # inference mode: a sample's features do not depend on its batch mates
        np.testing.assert_allclose(np.asarray(features(x[1:2])), expected[1:2], rtol=1e-4, atol=1e-5)


def test_a_cnn_backbone_keeps_its_map_or_pools_it(tmp_path):
    from augcache.base.conv_base import build_base, feature_function

    keras_hub.models.ResNetBackbone(input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16],
                                    stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
                                    image_shape=(SIZE, SIZE, 3)).save_to_preset(tmp_path / "resnet")
    x = pixels()
    maps = {}
    for pooling in ("none", "avg", "max"):
        model, preprocess = build_base(hub_spec(tmp_path / "resnet", pooling, {"scale": 1 / 255}))
        maps[pooling] = np.asarray(feature_function(model, preprocess, (SIZE, SIZE))(x))
    assert maps["none"].shape == (3, 4, 4, 16)
    np.testing.assert_allclose(maps["avg"], maps["none"].mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps["max"], maps["none"].max(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="conv_base.pooling: 'cls' is for transformer backbones; ResNetBackbone"):
        build_base(hub_spec(tmp_path / "resnet", "cls", {"scale": 1 / 255}))


def test_pooling_that_does_not_fit_the_backbone_is_refused_naming_the_key(vit_preset):
    from augcache.base.conv_base import BaseSpec, build_base

    with pytest.raises(ValueError, match="conv_base.pooling: 'avg' is for CNN backbones; ViTBackbone outputs tokens"):
        build_base(hub_spec(vit_preset, "avg"))
    with pytest.raises(ValueError, match=r"conv_base.preset: .*vit could not be loaded for images of \(64, 64, 3\) "
                                         r"\(data.image_size\)"):
        build_base(BaseSpec.from_config({"architecture": "keras_hub", "preset": str(vit_preset), "image_size": [64, 64],
                                         "pooling": "cls"}))
    with pytest.raises(ValueError, match="conv_base.pooling: 'cls' is for transformer backbones"):
        build_base(BaseSpec(architecture="MobileNetV2", image_size=(SIZE, SIZE), pooling="cls",
                            options={"alpha": 0.35}))


def test_missing_or_wrong_presets_stop_the_workflow_naming_the_key(tmp_path, tiny_data, tiny_base):
    from augcache.jobs.settings import SCHEMA, Settings
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
    with pytest.raises(ValueError, match="conv_base.preset: preset is for a keras-hub backbone, but "
                                         "conv_base.architecture is 'MobileNetV2'; set it to keras_hub"):
        check({"architecture": "MobileNetV2", "preset": "somewhere"})
    with pytest.raises(ValueError, match="conv_base.preprocessing: preprocessing is for a keras-hub backbone"):
        check({"architecture": "MobileNetV2", "preprocessing": {"scale": 1}})
    with pytest.raises(ValueError, match="feature_augment.flip and feature_augment.crop .*pooling 'cls' makes "
                                         "vectors .*featureaug"):
        config = {"architecture": "keras_hub", "preset": "kaggle://keras/vit/keras/x/1", "pooling": "cls"}
        tiny = tiny_config(tiny_data, tiny_base, conv_base=config, feature_augment={"flip": True},
                           train={"modes": ["cached", "featureaug"]})
        validate(tiny, str(SCHEMA), set_default=True)
        Settings(tiny).check()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=f"conv_base.preset: '{tmp_path / 'empty'}' is not a keras-hub preset"):
        check({"architecture": "keras_hub", "preset": str(tmp_path / "empty")})
    # a handle that does not name one version of its files is refused, with how to pin it
    for handle, message in (("kaggle://keras/dinov2/keras/dinov2_small", "dinov2_small/1"),
                            ("hf://org/model", "cannot be pinned"), ("kaggle://keras/vit/x", "names no version")):
        with pytest.raises(ValueError, match=f"conv_base.preset: '{handle}' .*{message}.*save_to_preset"):
            check({"architecture": "keras_hub", "preset": handle})


def test_a_preset_without_an_image_converter_is_refused_unless_the_config_states_the_scaling(
        dino_preset, tiny_data, tiny_base):
    """Backbone.save_to_preset writes no image converter: such a folder would otherwise get pixels
    scaled some default way, silently unlike its own handle. It stops before any job, naming the key,
    and conv_base.preprocessing (recorded in provenance) lets it through."""
    from snakemake.utils import validate

    from augcache.augmentation.manifest import AugmentConfig
    from augcache.jobs.settings import SCHEMA, Settings
    from augcache.base.store_fields import CacheConfig
    from augcache.base.store_fields import config_provenance
    from conftest import tiny_config

    def settings(**conv_base):
        config = tiny_config(tiny_data, tiny_base, conv_base={"architecture": "keras_hub",
                                                              "preset": str(dino_preset), **conv_base})
        validate(config, str(SCHEMA), set_default=True)
        return Settings(config)

    with pytest.raises(ValueError, match=r"conv_base.preset: .*dinov2' has no image converter "
                                         r"\(image_converter.json\).*conv_base.preprocessing"):
        settings().check()
    with pytest.raises(ValueError, match="conv_base.preset: .* has no image converter"):
        from augcache.base.conv_base import build_base

        build_base(hub_spec(dino_preset, "cls"))
    settings(preprocessing=IMAGENET).check()
    fields = config_provenance(hub_spec(dino_preset, "cls", IMAGENET), AugmentConfig(), CacheConfig())
    assert json.loads(fields["base_preprocessing"]) == IMAGENET
    with pytest.raises(Exception, match="preprocessing"):
        settings(preprocessing={"mean": [0.5] * 3}).check()  # std missing: the schema refuses it


def test_the_presets_files_are_hashed_into_provenance(vit_preset, tmp_path):
    import shutil

    from augcache.augmentation.manifest import AugmentConfig
    from augcache.base.store_fields import CacheConfig
    from augcache.base.store_fields import config_provenance

    fields = config_provenance(hub_spec(vit_preset, "cls"), AugmentConfig(), CacheConfig())
    assert fields["base_preset"] == str(vit_preset) and len(fields["preset_sha256"]) == 64
    changed = tmp_path / "vit"
    shutil.copytree(vit_preset, changed)
    converter = json.loads((changed / "image_converter.json").read_text())
    converter["config"]["scale"] = 1 / 255
    (changed / "image_converter.json").write_text(json.dumps(converter))
    assert config_provenance(hub_spec(changed, "cls"), AugmentConfig(), CacheConfig())["preset_sha256"] \
        != fields["preset_sha256"]


def test_an_epoch_is_extracted_through_a_hub_backbone_as_the_replayed_augmentation(float32_runs, vit_preset,
                                                                                 tmp_path):
    """The package's extraction path, on the shared run's manifest and pixel store, with a ViT's
    patch grid as spatial features."""
    from augcache.jobs.extraction import extract_epoch
    from augcache.base.conv_base import build_base, feature_function
    from augcache.base.extract import compute_features
    from augcache.augmentation.manifest import AugmentConfig, read_manifest
    from augcache.data.pixels import open_pixels
    from augcache.base.store_fields import CacheConfig
    from augcache.store.features import read_attrs, read_rows

    config, (flow, _) = float32_runs
    spec = hub_spec(vit_preset, "none")
    aug = AugmentConfig.from_config(config["augment"])
    store = tmp_path / "epoch_1.h5"
    manifest = flow.path("results/manifest/epoch_1.csv")
    open_store = lambda: open_pixels((SIZE, SIZE), "stretch", flow.path("results/dataset/pixels.h5"),  # noqa: E731
                                     flow.path("results/dataset/index.csv"))
    extract_epoch(manifest, store, epoch=1, spec=spec, aug=aug, cache=CacheConfig(dtype="float32", batch_size=4),
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

    from augcache.base.conv_base import build_base, feature_function
    from augcache.training.full_model import build_full_model, load_full_model
    from augcache.training.head import HeadConfig, build_head

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


def test_a_whole_run_on_a_hub_backbone_stores_its_patch_grid_and_predicts(hub_run):
    import pandas as pd

    from augcache.store.features import read_attrs

    config, flow = hub_run
    preset = config["conv_base"]["preset"]
    for store in ("results/features/val.h5", "results/features/train/epoch_1.h5", "results/features/train_noaug.h5"):
        attrs = read_attrs(flow.path(store))
        assert json.loads(attrs["feature_shape"]) == [GRID, GRID, 16], store
        assert attrs["base_architecture"] == "keras_hub" and attrs["base_preset"] == preset
        assert len(attrs["preset_sha256"]) == 64
    # the spatial transforms ran on the patch grid
    drawn = pd.read_csv(flow.path("results/train/featureaug/r0/feature_augment.csv.gz"))
    assert set(drawn["flip"]) == {0, 1} and (drawn["crop_height"] < GRID).any()
    # the exported model (backbone, pooling, head) loads with keras-hub's layers and predicts
    predictions = pd.read_csv(flow.path("results/predict/predictions.csv"))
    assert len(predictions) == 6 and set(predictions["label"]) <= {"circle", "square", "triangle"}
    assert "Side by side, " in flow.path("results/report/report.html").read_text()


def test_a_changed_preset_file_reruns_the_base_check_and_extraction(hub_run):
    """The preset's files are inputs of the base check (a file touched with the same bytes is not a
    change to Snakemake, which compares the contents of small files)."""
    import os

    from test_workflow import scheduled_jobs

    config, flow = hub_run
    converter = os.path.join(config["conv_base"]["preset"], "image_converter.json")
    before, stat = open(converter, "rb").read(), os.stat(converter)
    try:
        with open(converter, "ab") as handle:
            handle.write(b"\n")  # other bytes, the same converter
        rules = {rule for rule, _ in scheduled_jobs(flow.run(config, "-n").stdout)}
    finally:
        with open(converter, "wb") as handle:
            handle.write(before)
        os.utime(converter, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert {"check_conv_base", "extract_epoch", "extract_val"} <= rules
    assert not scheduled_jobs(flow.run(config, "-n").stdout)
