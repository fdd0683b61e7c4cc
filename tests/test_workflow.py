"""The workflow as a user runs it: snakemake in a copy of the project, on tiny data."""

import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from augcache.augmentation.augment import augment
from augcache.augmentation.manifest import AugmentConfig, params_array, read_manifest
from augcache.base.conv_base import BaseSpec, build_base, feature_function
from conftest import ROOT, Workflow, load_images, tiny_config


def recompute(config, manifest_rows):
    """conv_base(augment(image, manifest params)), computed here image by image."""
    spec = BaseSpec.from_config({**config["conv_base"], "image_size": config["data"]["image_size"],
                                 "seed": config["seed"]})
    model, preprocess = build_base(spec)
    features = feature_function(model, preprocess, spec.image_size)
    aug = AugmentConfig.from_config(config["augment"])
    resampling = aug.resampling
    out = []
    for i in range(len(manifest_rows)):
        row = manifest_rows.iloc[[i]]
        image = augment(load_images(row["path"], spec.image_size), params_array(row), resampling)
        out.append(features(image).numpy()[0])
    return np.stack(out)


def test_epoch_features_equal_replayed_augmentation_float32(float32_runs):
    config, (flow, _) = float32_runs
    with h5py.File(flow.path("results/features/train.h5"), "r") as store:
        assert store["features"].shape[:2] == (3, 18)
        for epoch in range(3):
            manifest = read_manifest(flow.path(f"results/manifest/epoch_{epoch}.csv"))
            rows = manifest.iloc[[0, 7, 17]]
            cached = store["features"][epoch][[0, 7, 17]]
            ids = [s.decode() for s in store["sample_ids"][epoch][[0, 7, 17]]]
            assert ids == rows["sample_id"].tolist()
            np.testing.assert_array_equal(store["labels"][epoch][[0, 7, 17]], rows["label_index"])
            np.testing.assert_allclose(cached, recompute(config, rows), rtol=1e-5, atol=1e-6)


def test_epochs_differ_from_each_other(float32_runs):
    _, (flow, _) = float32_runs
    with h5py.File(flow.path("results/features/train.h5"), "r") as store:
        ids = store["sample_ids"][:]
        first = {s: store["features"][0, i] for i, s in enumerate(ids[0])}
        second = {s: store["features"][1, i] for i, s in enumerate(ids[1])}
    assert not np.array_equal(ids[0], ids[1])  # another shuffle order
    sample = ids[0][0]
    assert np.abs(first[sample] - second[sample]).max() > 1e-3  # another augmentation


def test_two_clean_runs_are_byte_identical(float32_runs):
    """The second run computed epochs 0-2 in one job (cache.epochs_per_job): the same bytes."""
    _, (first, second) = float32_runs
    logs = second.path("results/logs/extract")
    assert sorted(p.name for p in logs.glob("epoch*.log")) == ["epochs_0-2.log"]
    assert sorted(p.name for p in first.path("results/logs/extract").glob("epoch*.log")) == [
        f"epoch_{e}.log" for e in range(3)]
    for epoch in range(3):
        assert f"epoch {epoch}: 18/18" in (logs / "epochs_0-2.log").read_text()
    for epoch in range(3):
        manifest = f"results/manifest/epoch_{epoch}.csv"
        assert first.path(manifest).read_bytes() == second.path(manifest).read_bytes()
        store = f"results/features/train/epoch_{epoch}.h5"
        with h5py.File(first.path(store)) as a, h5py.File(second.path(store)) as b:
            assert a["features"][:].tobytes() == b["features"][:].tobytes()
    with h5py.File(first.path("results/features/val.h5")) as a, \
            h5py.File(second.path("results/features/val.h5")) as b:
        assert a["features"][:].tobytes() == b["features"][:].tobytes()


# sha256 of the tiny config's manifests of epochs 0 and 1 (their paths left out, which name the
# test's temporary folder), as the workflow wrote them before the layout of the package changed:
# the numbers every cached feature is made from stay the same
MANIFESTS_WITHOUT_PATHS = ["a31b7211062be5769db6e0e52d25e17d6a859dae1de32f76d14f1fb9367d79d2",
                           "041d3f1b38b35075950ba2987168e65070f3b112a745a6f63af554f535d65db0"]


def test_manifests_are_those_of_earlier_versions(float32_runs):
    import hashlib

    from augcache.core.atomic import csv_text

    _, (flow, _) = float32_runs
    found = [hashlib.sha256(csv_text(read_manifest(flow.path(f"results/manifest/epoch_{e}.csv"))
                                     .drop(columns="path")).encode()).hexdigest() for e in (0, 1)]
    assert found == MANIFESTS_WITHOUT_PATHS


def test_extraction_logs_progress_and_merge_records_bytes(float32_runs):
    _, (flow, _) = float32_runs
    log = flow.path("results/logs/extract/epoch_1.log").read_text()
    assert re.search(r"epoch 1: 18/18 images \(100%\), [\d.]+ img/s", log)
    with h5py.File(flow.path("results/features/train.h5"), "r") as store:
        assert store.attrs["bytes_per_sample_epoch"] == 8 * 8 * 8 * 4


def test_val_features_are_unaugmented_in_sample_order(float32_runs, tiny_data):
    config, (flow, _) = float32_runs
    import pandas as pd

    from augcache.augmentation.manifest import identity_manifest

    index = pd.read_csv(flow.path("results/dataset/index.csv"))
    rows = identity_manifest(index[index["split"] == "val"])
    with h5py.File(flow.path("results/features/val.h5"), "r") as store:
        assert [s.decode() for s in store["sample_ids"][:]] == rows["sample_id"].tolist()
        np.testing.assert_allclose(store["features"][:], recompute(config, rows), rtol=1e-5, atol=1e-6)


def scheduled_jobs(dry_run_output: str) -> list[tuple[str, str]]:
    """(rule, epoch wildcard or '') of every job a dry run lists."""
    jobs = []
    for block in re.split(r"\n\s*\n", dry_run_output):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if rule:
            epoch = re.search(r"wildcards:.*\bepoch=(\d+)", block)
            jobs.append((rule.group(1), epoch.group(1) if epoch else ""))
    return jobs


def test_a_whole_run_with_epochs_grouped_per_job_plans_every_job_and_its_benchmark(tmp_path, tiny_data, tiny_base):
    """K=3 over LOCAL_RUN's 2 GPU slots: epochs 0-1 in one job, epoch 2 in a job named as one of
    one epoch; the report's cost account asks for exactly the benchmarks those jobs write."""
    flow = Workflow(tmp_path / "project")
    config = tiny_config(tiny_data, tiny_base, cache={"epochs_per_job": "auto"}, train={"sweep_k": [3]})
    planned = flow.run(config, "-n").stdout
    rules = [rule for rule, _ in scheduled_jobs(planned)]
    repeats = 1 + len(set(re.findall(r"results/repeat_(\d+)/manifest", planned)))
    assert rules.count("extract_epochs_0_1") == rules.count("extract_epochs_2_2") == repeats
    assert "extract_epoch" not in rules and "make_report" in rules
    for job in ("epochs_0-1", "epoch_2"):
        assert f"results/benchmarks/extract/{job}.tsv" in planned
    # a job of several epochs declares extract_epoch's memory (profiles/default) and its runtime per epoch
    profile = yaml.safe_load((ROOT / "profiles/default/config.yaml").read_text())["set-resources"]["extract_epoch"]
    for rule, epochs in (("extract_epochs_0_1", 2), ("extract_epochs_2_2", 1)):
        block = planned[planned.index(f"rule {rule}:"):]
        resources = re.search(r"resources: (.*)", block[:block.index("\n\n")]).group(1)
        assert f"mem_mb={profile['mem_mb']}," in resources and f"runtime={profile['runtime'] * epochs}," in resources


def test_more_epochs_schedule_only_the_new_ones(float32_runs):
    config, (flow, _) = float32_runs
    dry = flow.run(dict(config, cache=dict(config["cache"], k=5)), "cache", "-n")
    jobs = scheduled_jobs(dry.stdout)
    assert sorted(e for rule, e in jobs if rule == "extract_epoch") == ["3", "4"], dry.stdout
    assert sorted(e for rule, e in jobs if rule == "write_manifest") == ["3", "4"]
    assert ("extract_val", "") not in jobs


def test_nothing_reruns_on_a_second_invocation(float32_runs):
    config, (flow, _) = float32_runs
    result = flow.run(config, "cache", "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_float16_store_equals_the_float32_features_cast(full_run):
    config, flow = full_run
    assert config["cache"]["dtype"] == "float16"
    manifest = read_manifest(flow.path("results/manifest/epoch_0.csv"))
    with h5py.File(flow.path("results/features/train/epoch_0.h5"), "r") as store:
        assert store["features"].dtype == np.float16
        cached = store["features"][:4]
    recomputed = recompute(config, manifest.iloc[:4]).astype(np.float16)
    # equal after casting, up to one float16 step where float32 rounding crosses a boundary
    np.testing.assert_allclose(cached.astype(np.float32), recomputed.astype(np.float32),
                               rtol=2**-10, atol=2**-24)
    assert np.mean(cached == recomputed) > 0.99


@pytest.mark.parametrize("overlay, message", [
    ({"cache": {"k": 0}}, "On instance['cache']['k']"),
    ({"cache": {"epoch": 3}}, "('epoch' was unexpected)"),
    ({"augment": {"rotation_range": "lots"}}, "On instance['augment']['rotation_range']"),
    ({"data": {"dir": "/no/such/folder"}}, "data.dir: folder '/no/such/folder' does not exist"),
    ({"conv_base": {"weights": "/no/such/weights.h5"}}, "conv_base.weights: weights file '/no/such/weights.h5'"),
])
def test_config_errors_stop_before_any_job_and_name_the_key(tmp_path, tiny_data, tiny_base, overlay, message):
    config = tiny_config(tiny_data, tiny_base)
    for section, values in overlay.items():
        config[section] = {**config.get(section, {}), **values}
    if "weights" in overlay.get("conv_base", {}):
        config["conv_base"]["architecture"] = "MobileNetV2"
    flow = Workflow(tmp_path / "project")
    result = flow.run(config, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not flow.path("results").exists()


def test_imagenet_weights_are_fetched_once_on_the_submit_host(tmp_path, tiny_data, tiny_base):
    config = tiny_config(tiny_data, tiny_base,
                         conv_base={"architecture": "MobileNetV2", "weights": "imagenet"})
    flow = Workflow(tmp_path / "project")
    dry = flow.run(config, "cache", "-n")
    jobs = [rule for rule, _ in scheduled_jobs(dry.stdout)]
    assert jobs.count("fetch_weights") == 1
    fetched = "results/base/MobileNetV2_imagenet.weights.h5"
    check = dry.stdout.split("rule check_conv_base:")[1].split("\n\n")[0]
    assert re.search(rf"input: .*\b{re.escape(fetched)}\b", check), check
    assert "fetch_weights" in (ROOT / "Snakefile").read_text().split("localrules:")[1]


def test_snakemake_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT,
                            capture_output=True, text=True)
    assert "Congratulations" in result.stdout + result.stderr, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_rule_files_are_snakefmt_clean():
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "."], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
