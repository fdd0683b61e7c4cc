"""Fine-tuning from activations cached at a split of the base, and uint8 storage."""

import json
import os

import h5py
import numpy as np
import pandas as pd
import pytest

from augcache.store.quantise import as_stored, dequantise, quantise, stored_row_bytes
from conftest import FINETUNE_EPOCHS, HEAD_EPOCHS, finetune_config

def test_split_errors_name_the_layers_the_base_can_be_cut_at():
    import keras

    from augcache.base.conv_base import split_base

    model = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    bottom, top = split_base(model, "block_14_add")  # before the last two blocks
    assert top.layers[1].name == "block_15_expand" and bottom.output.shape == top.input.shape
    with pytest.raises(ValueError, match="residual connection") as inside:
        split_base(model, "block_15_expand")  # block 15's add also reads block_14_add
    assert "block_15_add" in str(inside.value) and "block_14_add" in str(inside.value)
    with pytest.raises(ValueError, match="no layer named 'block_99'"):
        split_base(model, "block_99")
    with pytest.raises(ValueError, match="last layer"):
        split_base(model, model.layers[-1].name)


def test_the_top_of_cached_activations_is_the_base_output(finetuned):
    """top(activations in the float32 epoch store) equals the whole base run on the same augmented
    images, through the same extraction path."""
    import keras

    from augcache.base.conv_base import feature_function, split_base
    from augcache.base.extract import compute_features
    from augcache.augmentation.manifest import AugmentConfig, read_manifest
    from augcache.data.pixels import Pixels

    config, flow = finetuned
    base = keras.saving.load_model(config["conv_base"]["architecture"], compile=False)
    _, top = split_base(base, "cut")
    with h5py.File(flow.path("results/features/train/epoch_1.h5"), "r") as handle:
        activations = handle["features"][:]
        attrs = dict(handle.attrs)
    assert activations.shape[1:] == (16, 16, 8) and attrs["base_split"] == "cut"
    assert attrs["bottom_weights_sha256"] != attrs["weights_sha256"]
    table = read_manifest(flow.path("results/manifest/epoch_1.csv"))
    table["path"] = [str(flow.path(p)) if not os.path.isabs(p) else p for p in table["path"]]
    resampling = AugmentConfig.from_config(config["augment"]).resampling
    whole = compute_features(table, Pixels((32, 32)), feature_function(base, lambda x: x, (32, 32)), (32, 32), 4,
                             resampling)
    topped = top(activations, training=False).numpy()
    assert np.abs(topped - whole).max() <= 1e-5 * np.abs(whole).max()
    assert np.abs(whole).max() > 0.1


def test_replay_reproduces_cached_fine_tuning_with_batchnorm_in_the_top(finetuned):
    config, flow = finetuned
    cached = pd.read_csv(flow.path("results/finetune/cached/k2_r0/metrics.csv"))
    replay = pd.read_csv(flow.path("results/finetune/replay/k2_r0/metrics.csv"))
    assert len(cached) == HEAD_EPOCHS + FINETUNE_EPOCHS
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(replay[column], cached[column], rtol=0, atol=1e-6)
    assert list(cached.columns) == list(pd.read_csv(flow.path("results/finetune/noaug/r0/metrics.csv")).columns)
    assert not flow.path("results/train").exists()


def test_fine_tuning_changes_the_top_but_not_its_batchnorm(finetuned):
    import keras

    config, flow = finetuned
    base = keras.saving.load_model(config["conv_base"]["architecture"], compile=False)
    tuned = keras.saving.load_model(flow.path("results/finetune/cached/k2_r0/head.keras"), compile=False)
    top = tuned.layers[1]
    changed = {}
    for layer in top.layers[1:]:
        before = base.get_layer(layer.name).get_weights()
        changed[layer.name] = any(not np.array_equal(a, b) for a, b in zip(layer.get_weights(), before, strict=True))
    assert changed["top_conv"] and not changed["top_norm"], changed
    summary = json.loads(flow.path("results/finetune/cached/k2_r0/summary.json").read_text())
    assert summary["top_trainable_parameters"] == 8 * 8 * 9  # the conv kernel, not the BatchNorm


def test_the_fine_tuned_model_classifies_raw_images_as_its_metrics_say(finetuned):
    config, flow = finetuned
    from augcache.training.full_model import predict_folder

    selection = json.loads(flow.path("results/sweep/selection.json").read_text())
    assert selection["run_dir"] == "results/finetune/cached/k2_r0"
    table = predict_folder(flow.path("results/model/model.keras"), flow.path("results/model/classes.json"),
                           config["data"]["dir"] + "/val", batch_size=config["cache"]["batch_size"])
    truth = table["path"].map(lambda p: p.split("/")[-2])
    accuracy = float((table["label"] == truth).mean())
    assert accuracy == pytest.approx(selection["val_accuracy_at_epoch"], abs=1e-6)


def test_the_report_compares_head_only_and_fine_tuned(finetuned):
    _, flow = finetuned
    page = flow.path("results/report/report.html").read_text()
    for mode in ("cached", "replay", "onthefly", "noaug"):
        assert f'<tr data-mode="{mode}">' in page
    assert 'id="split-share"' in page and 'id="finetune-speed"' in page
    base = json.loads(flow.path("results/base/base.json").read_text())
    assert 0 < base["bottom_flops_share"] < 1 and base["bytes_per_sample_epoch"] == 16 * 16 * 8 * 4


def test_a_split_run_whose_stores_cannot_fit_stops_before_any_extraction(tmp_path, tiny_data, split_base_file):
    from test_storage import assert_refused_before_extraction

    config = finetune_config(tiny_data, split_base_file, cache={"k": 6}, train={"repeats": 2})
    planned = assert_refused_before_extraction(config, tmp_path)
    assert planned["bytes_per_sample_epoch"] == 16 * 16 * 8 * 4  # the activations at the split


def test_uint8_quantises_each_sample_and_channel_on_its_own():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (6, 5, 5, 4)).astype(np.float32) * rng.uniform(0.1, 10, 4).astype(np.float32)
    x[2, ..., 1] = 3.0  # a constant channel comes back exactly
    q, scale, offset = quantise(x)
    assert q.dtype == np.uint8 and scale.shape == offset.shape == (6, 4)
    back = dequantise(q, scale, offset)
    step = scale[:, None, None, :]
    assert np.all(np.abs(back - x) <= step * 0.5 + 1e-6 * np.abs(x))
    assert np.array_equal(back[2, ..., 1], x[2, ..., 1])
    # a sample's stored values do not depend on its batch mates
    alone = [quantise(x[i:i + 1]) for i in range(len(x))]
    assert all(np.array_equal(q[i], a[0][0]) and np.array_equal(scale[i], a[1][0]) for i, a in enumerate(alone))
    vectors = rng.normal(0, 1, (3, 7)).astype(np.float32)
    assert quantise(vectors)[1].shape == (3, 1)
    assert np.abs(as_stored(vectors, "uint8") - vectors).max() < np.ptp(vectors, axis=1).max() / 255
    assert stored_row_bytes((5, 5, 4), "uint8") == 100 + 8 * 4 and stored_row_bytes((5, 5, 4), "float16") == 200


def test_uint8_stores_read_merge_and_stream_as_they_were_written(tmp_path):
    from augcache.store.features import FeatureWriter
    from augcache.store.merge import merge_shards
    from augcache.store.stream import StoreBlocks
    from augcache.store.features import read_features

    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 1.0, (10, 3, 3, 5)).astype(np.float32)
    labels = np.arange(10) % 3
    ids = [f"s{i}" for i in range(10)]
    attrs = {"split": "train", "epoch": 0}
    parts = []
    for shard, (start, stop) in enumerate(((0, 4), (4, 10))):
        path = tmp_path / f"shard_{shard}.h5"
        part = dict(attrs, shard=shard, shards=2, row_start=start, row_stop=stop)
        with FeatureWriter(path, stop - start, (3, 3, 5), "uint8", part) as writer:
            writer.write(x[start:stop], labels[start:stop], ids[start:stop])
        parts.append(path)
    merged = tmp_path / "epoch_0.h5"
    merge_shards(parts, merged)
    features, read_labels = read_features(merged)
    np.testing.assert_array_equal(features, as_stored(x, "uint8"))
    np.testing.assert_array_equal(read_labels, labels)
    streamed = np.concatenate([b for b, _ in StoreBlocks(merged, 3, order=np.arange(10)[::-1])])
    np.testing.assert_array_equal(streamed, features[::-1])
    with h5py.File(merged, "r") as handle:
        assert handle["features"].dtype == np.uint8 and handle["scale"].shape == (10, 5)


def test_uint8_fine_tuning_is_reproduced_by_replay_and_compared_in_the_report(finetuned):
    config, flow = finetuned
    variant = "results/variants/u8/results"
    # the report reads a variant's cached runs; its replay run is asked for by name
    flow.run(config, f"{variant}/finetune/replay/k2_r0/metrics.csv")
    cached = pd.read_csv(flow.path(f"{variant}/finetune/cached/k2_r0/metrics.csv"))
    replay = pd.read_csv(flow.path(f"{variant}/finetune/replay/k2_r0/metrics.csv"))
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(replay[column], cached[column], rtol=0, atol=1e-6)
    with h5py.File(flow.path(f"{variant}/features/train/epoch_0.h5"), "r") as handle:
        assert handle["features"].dtype == np.uint8 and handle.attrs["dtype"] == "uint8"
        assert handle.attrs["base_split"] == "cut"
    page = flow.path("results/report/report.html").read_text()
    assert '<tr data-variant="u8"><td>u8</td><td>uint8</td>' in page
    assert '<tr data-variant="default"><td>default</td><td>float32</td>' in page


def test_a_fine_tuned_top_cached_in_bfloat16_is_exported_in_float32(tmp_path, split_base_file):
    import keras

    from augcache.base.conv_base import BaseSpec, build_bottom, split_base
    from augcache.training.finetune import classifier_on_top
    from augcache.training.full_model import build_full_model
    from augcache.training.head import HeadConfig, build_head

    spec = BaseSpec(str(split_base_file), (32, 32), split_at="cut", compute_dtype="mixed_bfloat16")
    model, bottom, _ = build_bottom(spec)
    _, top = split_base(model, "cut")
    tuned = classifier_on_top(top, build_head(tuple(top.output.shape[1:]), 3, HeadConfig(), 0))
    tuned.save(tmp_path / "tuned.keras")
    loaded = keras.saving.load_model(tmp_path / "tuned.keras", compile=False)
    full = build_full_model(spec, loaded)

    def policies(layer):
        inner = getattr(layer, "layers", [])
        return {layer.dtype_policy.name}.union(*(policies(sub) for sub in inner))

    assert policies(full) == {"float32"}
    assert "mixed_bfloat16" in policies(loaded)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    in_bfloat16 = loaded(bottom(x)).numpy()
    exported = full(x).numpy()
    assert 0 < np.abs(exported - in_bfloat16).max() < 0.05


def test_the_estimate_counts_every_variants_stores(finetuned, tmp_path):
    from augcache.cli import estimate
    from conftest import ROOT
    from test_storage import overlay_file

    config, flow = finetuned
    result = estimate([ROOT / "config/config.yaml", overlay_file(config, tmp_path)], workdir=flow.root)
    own = estimate([ROOT / "config/config.yaml", overlay_file(dict(config, variants={}), tmp_path)],
                   workdir=flow.root)
    variant = {p: b for p, b in result["stores"].items() if p.startswith("results/variants/u8/")}
    assert set(result["stores"]) == set(own["stores"]) | set(variant)
    assert result["total_bytes"] == own["total_bytes"] + result["variants_bytes"]["u8"]
    made = {str(p.relative_to(flow.root)) for p in flow.path("results/variants/u8").rglob("*.h5")}
    assert made == set(variant), made ^ set(variant)
    for store in variant:
        assert variant[store] <= flow.path(store).stat().st_size <= result["stores_at_most"][store], store
