"""Nothing silently wrong, no work lost to a typo: merged stores, degenerate features, failed checks,
empty shards, huge images, parse-time work, atomic small files, and smaller defects."""

import logging
import os
import struct
import subprocess
import sys
import zlib

import h5py
import numpy as np
import pytest

from augcache.core.paths import HASH_MEMO
from augcache.core.provenance import ProvenanceError
from augcache.data.dataset import DatasetError, build_index
from augcache.store.features import FeatureWriter, read_attrs
from augcache.store.merge import merge_epochs, merge_shards
from augcache.store.writer import StoreError
from conftest import Workflow, check_log, conv_base_model, make_image_folder, tiny_config


def write_store(path, features, epoch=0, manifest="m", **extra):
    attrs = {"split": "train", "epoch": epoch, "manifest_sha256": manifest, **extra}
    with FeatureWriter(path, len(features), features.shape[1:], "float32", attrs) as writer:
        writer.write(features, np.arange(len(features)), [f"s{i}" for i in range(len(features))])


# 1. a merged store over a missing or replaced epoch store

def test_merged_store_refuses_a_missing_or_replaced_epoch(tmp_path):
    rng = np.random.default_rng(0)
    manifests = []
    for e in range(2):
        manifests.append(tmp_path / f"m{e}.csv")
        manifests[-1].write_text(f"manifest {e}\n")
    from augcache.core.provenance import sha256_file

    for e in range(2):
        write_store(tmp_path / f"epoch_{e}.h5", rng.normal(size=(4, 3)).astype(np.float32), e,
                    sha256_file(manifests[e]))
    merged = tmp_path / "train.h5"
    merge_epochs([tmp_path / "epoch_0.h5", tmp_path / "epoch_1.h5"], manifests, merged)
    assert read_attrs(merged)["epochs"] == 2

    original = (tmp_path / "epoch_1.h5").read_bytes()
    (tmp_path / "epoch_1.h5").unlink()
    with pytest.raises(StoreError, match=f"{merged}: the store of epoch 1, .*epoch_1.h5, is missing"):
        read_attrs(merged)
    with h5py.File(merged, "r") as handle:  # read directly, a missing epoch is NaN, never zeros
        assert np.isnan(handle["features"][1]).all()

    write_store(tmp_path / "epoch_1.h5", rng.normal(size=(4, 3)).astype(np.float32), 1,
                sha256_file(manifests[1]))
    with pytest.raises(StoreError, match="the store of epoch 1, .*epoch_1.h5, was replaced after the merge"):
        read_attrs(merged)
    (tmp_path / "epoch_1.h5").write_bytes(original)
    assert read_attrs(merged)["epochs"] == 2


def test_merge_and_training_refuse_lists_of_different_lengths(tmp_path):
    from augcache.training.train import check_epoch_stores

    write_store(tmp_path / "epoch_0.h5", np.ones((2, 3), np.float32) * [[1], [2]])
    with pytest.raises(ValueError, match="1 epoch stores but 2 manifests"):
        merge_epochs([tmp_path / "epoch_0.h5"], [tmp_path / "a", tmp_path / "b"], tmp_path / "train.h5")
    with pytest.raises(ValueError, match="1 epoch stores but 2 manifests"):
        check_epoch_stores([tmp_path / "epoch_0.h5"], [tmp_path / "a", tmp_path / "b"], {})


def test_a_stale_manifest_refusal_says_what_to_do(tmp_path):
    from augcache.training.train import check_epoch_stores

    manifest = tmp_path / "epoch_0.csv"
    manifest.write_text("old\n")
    from augcache.core.provenance import sha256_file

    write_store(tmp_path / "epoch_0.h5", np.ones((2, 3), np.float32) * [[1], [2]],
                manifest=sha256_file(manifest))
    manifest.write_text("new\n")
    with pytest.raises(ProvenanceError, match=r"changed after .*epoch_0.h5 was made from it; delete .*epoch_0.h5 "
                                              "and rerun"):
        check_epoch_stores([tmp_path / "epoch_0.h5"], [manifest], {})


# 2. degenerate features

def test_feature_spread_problems_are_named():
    from augcache.jobs.extraction import feature_spread_problem

    rng = np.random.default_rng(0)
    good = rng.normal(size=(8, 5)).astype(np.float32)
    assert feature_spread_problem(good, "float16") is None
    assert "the same for every image (" in feature_spread_problem(np.ones((8, 5), np.float32), "float32")
    tiny = (good * 1e-11).astype(np.float32)
    assert feature_spread_problem(tiny, "float32") is None
    assert "once stored as float16" in feature_spread_problem(tiny, "float16")
    assert "not finite" in feature_spread_problem(np.full((3, 2), np.nan, np.float32), "float32")
    mostly = good * 1e-9
    mostly[:, 0] = [1, 2, 3, 4, 5, 6, 7, 8]
    assert "mostly lost when stored as float16" in feature_spread_problem(mostly, "float16")


def test_an_untrained_imagenet_architecture_stops_the_base_check(tmp_path, tiny_data):
    from augcache.jobs.extraction import check_base
    from augcache.base.conv_base import BaseSpec
    from augcache.data.pixels import open_pixels

    index, _ = build_index(tiny_data, 0.2, 0)
    spec = BaseSpec("MobileNetV2", (32, 32), weights=None, options={"alpha": 0.35})
    with pytest.raises(ValueError, match=r"conv_base: the features of MobileNetV2 .* once stored as float16 .*"
                                         r"cache.dtype: float32"):
        check_base(spec, tmp_path / "base.json", open_pixels((32, 32), "stretch"), index, "float16")
    assert not (tmp_path / "base.json").exists()


def test_a_store_of_constant_features_is_refused(tmp_path):
    write_store(tmp_path / "constant.h5", np.ones((3, 4), np.float32))
    with pytest.raises(StoreError, match="every sample has the same features"):
        read_attrs(tmp_path / "constant.h5")
    write_store(tmp_path / "one_row.h5", np.ones((1, 4), np.float32))
    assert read_attrs(tmp_path / "one_row.h5")["features_constant"] == 0


# 4. more shards than batches

def test_empty_shards_are_written_and_merged(tmp_path):
    from augcache.jobs.extraction import shard_rows

    assert shard_rows(18, 16, 3, 2) == (18, 18)
    features = np.random.default_rng(0).normal(size=(5, 2, 2)).astype(np.float32)
    attrs = {"split": "train", "epoch": 0, "manifest_sha256": "m", "shards": 2}
    ids = [f"s{i}" for i in range(5)]
    with FeatureWriter(tmp_path / "0.h5", 5, (2, 2), "float16", dict(attrs, shard=0, row_start=0, row_stop=5)) as w:
        w.write(features, np.arange(5), ids)
    with FeatureWriter(tmp_path / "1.h5", 0, (2, 2), "float16", dict(attrs, shard=1, row_start=5, row_stop=5)):
        pass
    assert read_attrs(tmp_path / "1.h5")["n_samples"] == 0
    merge_shards([tmp_path / "0.h5", tmp_path / "1.h5"], tmp_path / "epoch.h5")
    with FeatureWriter(tmp_path / "one.h5", 5, (2, 2), "float16", dict(attrs, shard=0, row_start=0, row_stop=5)) as w:
        w.write(features, np.arange(5), ids)
    with h5py.File(tmp_path / "epoch.h5", "r") as a, h5py.File(tmp_path / "one.h5", "r") as b:
        assert a["features"][:].tobytes() == b["features"][:].tobytes()
        assert a.attrs["features_sha256"] == b.attrs["features_sha256"]


# 5. huge images

def png_header_only(path, width, height):
    """A PNG whose header claims width x height (a decompression bomb's first bytes)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_a_huge_image_is_a_bad_file_named_and_skippable(tmp_path):
    from augcache.data.images import DEFAULT_MAX_IMAGE_PIXELS, set_max_image_pixels

    root = make_image_folder(tmp_path / "data", {"circle": 3, "square": 3}, size=16)
    png_header_only(root / "square" / "bomb.png", 20000, 20000)
    with pytest.raises(DatasetError, match=r"bomb.png: too many pixels: 20000x20000 = 400,000,000, more than "
                                           r"data.max_image_pixels \(89,478,485\)"):
        build_index(root, 0.34, 0, on_bad_image="error")
    table, skipped = build_index(root, 0.34, 0, on_bad_image="skip")
    assert skipped["path"].tolist() == [str(root / "square" / "bomb.png")]
    assert len(table) == 6
    try:
        set_max_image_pixels(200)  # the 16x16 images are over this one
        with pytest.raises(DatasetError, match="circle_000.png: too many pixels: 16x16 = 256"):
            build_index(root, 0.34, 0)
    finally:
        set_max_image_pixels(DEFAULT_MAX_IMAGE_PIXELS)


def test_prediction_leaves_out_bad_files_and_names_them(tmp_path, caplog):
    from augcache.training.full_model import list_images, usable_images

    root = make_image_folder(tmp_path / "data", {"circle": 2}, size=16)
    png_header_only(root / "circle" / "bomb.png", 20000, 20000)
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with caplog.at_level(logging.WARNING):
        good, bad = usable_images(list_images(root))
    assert [p.name for p in good] == ["circle_000.png", "circle_001.png"]
    assert {os.path.basename(p) for p, _ in bad} == {"bomb.png", "broken.png"}
    assert "bomb.png: too many pixels" in caplog.text


# 8. smaller

def test_a_missing_csv_is_named_as_data_csv(tmp_path):
    with pytest.raises(DatasetError, match="data.csv: .*listing.csv does not exist"):
        build_index(tmp_path / "listing.csv", 0.2, 0)


def test_a_class_with_one_image_is_warned_about(tmp_path, caplog):
    root = make_image_folder(tmp_path / "data", {"circle": 5, "square": 5, "triangle": 1}, size=16)
    with caplog.at_level(logging.WARNING):
        table, _ = build_index(root, 0.2, 0)
    assert "class 'triangle' has 1 image(s): none is held out for validation" in caplog.text
    assert (table[table["label"] == "triangle"]["split"] == "train").all()


def test_small_files_are_written_atomically_and_flushed(tmp_path, monkeypatch):
    import pandas as pd

    import augcache.core.atomic as atomic
    from augcache.data.dataset import write_index
    from augcache.augmentation.manifest import write_manifest

    synced = []
    monkeypatch.setattr(atomic, "fsync_path", lambda p: synced.append(str(p)))
    table = pd.DataFrame({"a": [1, 2]})
    write_index(table, tmp_path / "index.csv")
    assert (tmp_path / "index.csv").read_text() == "a\n1\n2\n"
    assert synced[-1] == str(tmp_path) and ".index.csv." in synced[-2]

    def fail(*args):
        raise OSError("node failure")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="node failure"):
        write_manifest(pd.DataFrame({"a": [3]}), tmp_path / "index.csv")
    assert (tmp_path / "index.csv").read_text() == "a\n1\n2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.csv"]


def test_the_demo_base_file_has_the_same_bytes_on_every_clean_run(tmp_path):
    import keras

    builds = []
    for name in ("a", "b"):  # each in its own interpreter, as two clean runs are (both at once)
        code = ("from augcache.data.demo import train_demo_base; "
                f"train_demo_base({str(tmp_path / name / 'base.keras')!r}, size=16, per_class=2, epochs=1, seed=0)")
        builds.append(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True))
    for build in builds:
        _, errors = build.communicate()
        assert build.returncode == 0, errors[-3000:]
    assert (tmp_path / "a" / "base.keras").read_bytes() == (tmp_path / "b" / "base.keras").read_bytes()
    assert keras.saving.load_model(tmp_path / "a" / "base.keras").output.shape[-1] > 0


# 6. the dataset is walked once per run, by the main process, never when a job parses the workflow

def test_the_dataset_is_not_walked_when_the_workflow_is_parsed(tmp_path, tiny_data, tiny_base):
    flow = Workflow(tmp_path / "project")
    calls = tmp_path / "walks.txt"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import augcache.data.listing as d\n"
        "_walk = d.listing_fingerprint\n"
        "def listing_fingerprint(source, *args, **kwargs):\n"
        f"    open({str(calls)!r}, 'a').write(str(source) + '\\n')\n"
        "    return _walk(source, *args, **kwargs)\n"
        "d.listing_fingerprint = listing_fingerprint\n")
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    overlay = flow.path("overlay.yaml")
    import yaml

    overlay.write_text(yaml.safe_dump(tiny_config(tiny_data, tiny_base)))

    def snakemake(*args):
        return subprocess.run([sys.executable, "-m", "snakemake", *args, "--cores", "1", "--configfile",
                               str(overlay)], cwd=flow.root, env=env, capture_output=True, text=True)

    listed = snakemake("--list-rules")
    assert listed.returncode == 0, listed.stderr
    assert not calls.exists(), "parsing the workflow walked the dataset"
    planned = snakemake("-n", "cache")
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr
    assert calls.read_text().splitlines() == [str(tiny_data)]


# 3. a failed attempt costs nothing; config-only mistakes stop before any job

@pytest.fixture(scope="module")
def cached_run(tmp_path_factory, float32_runs):
    """A clone of the shared float32 cache, which these tests change."""
    config, (flow, _) = float32_runs
    return config, flow.clone(tmp_path_factory.mktemp("defects") / "project")


def outputs_state(flow):
    """Every result file's bytes, and the modification time of every store (what reruns key on); the
    records of the jobs that ran (logs, benchmarks) and the remembered hashes of files left out."""
    return {str(p.relative_to(flow.root)): (p.stat().st_mtime_ns if p.suffix == ".h5" else 0, p.read_bytes())
            for p in sorted(flow.path("results").rglob("*"))
            if p.is_file() and "logs" not in p.parts and "benchmarks" not in p.parts
            and not p.is_relative_to(flow.path(HASH_MEMO))}


def test_a_reversed_range_stops_before_any_job(cached_run):
    config, flow = cached_run
    before = outputs_state(flow)
    bad = dict(config, augment=dict(config["augment"], zoom_range=[1.2, 0.8]))
    result = flow.run(bad, "cache", check=False)
    assert result.returncode != 0
    assert "augment.zoom_range: lower bound 1.2 exceeds upper bound 0.8" in result.stdout + result.stderr
    assert outputs_state(flow) == before


def test_a_failed_base_check_loses_nothing(cached_run, tmp_path):
    config, flow = cached_run
    before = outputs_state(flow)
    weights = tmp_path / "tiny.weights.h5"
    conv_base_model().save_weights(weights)
    for base in ({"architecture": "NotANet"}, {"architecture": "MobileNetV2", "weights": str(weights)}):
        typo = dict(config, conv_base=dict(config["conv_base"], **base))
        result = flow.run(typo, "cache", check=False)
        assert result.returncode != 0
        assert "conv_base" in check_log(flow).read_text()
        assert outputs_state(flow) == before, "a failed base check changed the results"
    again = flow.run(config, "cache", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout


def test_a_deleted_epoch_store_is_computed_and_merged_again(cached_run):
    config, flow = cached_run
    store = flow.path("results/features/train/epoch_1.h5")
    with h5py.File(store, "r") as handle:
        features = handle["features"][:]
    store.unlink()
    with pytest.raises(StoreError, match="the store of epoch 1, .*epoch_1.h5, is missing"):
        read_attrs(flow.path("results/features/train.h5"))
    dry = flow.run(config, "cache", "-n")
    assert "rule extract_epoch" in dry.stdout and "rule merge_epochs" in dry.stdout, dry.stdout
    flow.run(config, "cache")
    with h5py.File(flow.path("results/features/train.h5"), "r") as handle:
        np.testing.assert_array_equal(handle["features"][1], features)
    assert read_attrs(flow.path("results/features/train.h5"))["epochs"] == config["cache"]["k"]
