"""Sizes known up front (the estimate, base.json, the refusal before any extraction) and the
`augcache` command (predict, inspect, estimate)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from augcache.cli import estimate, inspect_store
from augcache.core.paths import REUSE
from conftest import ROOT, Workflow, tiny_config

FEATURE_STORES = ("features/", "dataset/pixels.h5")


def overlay_file(config, folder: Path) -> Path:
    path = folder / "overlay.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_estimate_equals_the_bytes_the_run_writes_within_the_stated_metadata(full_run, tmp_path):
    config, flow = full_run
    # a folder where nothing has run: the counts come from listing the images
    result = estimate([ROOT / "config/config.yaml", overlay_file(config, tmp_path)], workdir=tmp_path)
    assert "results/dataset/index.csv" not in result["counted_from"]
    assert result["epoch_stores"] == 2 * 2  # K = 2 (the sweep's 1 is below it), 2 repeats
    written = {path: flow.path(path).stat().st_size for path in result["stores"]}
    for path, size in written.items():
        assert result["stores"][path] <= size <= result["stores_at_most"][path], (path, size)
    assert sum(written.values()) <= result["total_bytes"] + result["hdf5_metadata_at_most_bytes"]
    # every store of the run is in the estimate
    made = {str(p.relative_to(flow.root)) for p in flow.path("results").rglob("*.h5")
            if not p.is_relative_to(flow.path(REUSE))}  # the kept outputs are the same files
    assert made == set(result["stores"]), made ^ set(result["stores"])


def test_base_json_states_the_bytes_per_sample_epoch_and_the_totals(full_run):
    config, flow = full_run
    info = json.loads(flow.path("results/base/base.json").read_text())
    with h5py.File(flow.path("results/features/val.h5")) as handle:
        row = int(np.prod(handle["features"].shape[1:])) * handle["features"].dtype.itemsize
    assert info["bytes_per_sample_epoch"] == info["storage"]["bytes_per_sample_epoch"] == row
    storage = info["storage"]
    assert storage["epochs_feature_bytes"] == storage["n_train"] * 2 * 2 * row
    assert "results/features/val.h5" in storage["stores"]
    log = flow.path("results/logs/describe_conv_base.log").read_text()
    assert "results/features/train/epoch_0.h5" in log and "total" in log


def test_a_run_whose_stores_cannot_fit_stops_before_any_extraction(tmp_path, tiny_data, tiny_base):
    config = tiny_config(tiny_data, tiny_base, cache={"k": 6}, train={"repeats": 2})
    planned = assert_refused_before_extraction(config, tmp_path)
    features = sum(b for p, b in planned["stores_at_most"].items() if "features/" in p)
    assert features > 600_000  # 14 stores: the refusal is not a matter of a few kB


def assert_refused_before_extraction(config: dict, tmp_path: Path) -> dict:
    """Run the config's cache on a tmpfs that holds its pixel store and half its feature stores:
    the extraction must stop before computing anything, with the arithmetic, and keep the pixels.
    Returns the run's estimate."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    flow = Workflow(tmp_path / "project")
    planned = estimate([ROOT / "config/config.yaml", overlay_file(config, tmp_path)], workdir=tmp_path)
    features = sum(b for p, b in planned["stores_at_most"].items() if "features/" in p)
    pixels = planned["stores_at_most"]["results/dataset/pixels.h5"]
    results = flow.path("results")
    results.mkdir()
    size_kb = (pixels + features // 2) // 1024
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(results)], check=True)
    try:
        result = flow.run(config, "cache", check=False)
        assert result.returncode != 0
        logs = "".join(p.read_text() for p in flow.path("results/logs/extract").rglob("*.log"))
        assert "stores not yet written need up to" in logs and "nothing was extracted" in logs, logs[-3000:]
        assert "results/features/train/epoch_0.h5:" in logs  # the arithmetic, store by store
        assert not [p for p in results.rglob("*.h5") if "features" in str(p)]
        assert flow.path("results/dataset/pixels.h5").exists()  # what was computed is kept
    finally:
        subprocess.run(["umount", str(results)], check=True)
    return planned


def test_inspect_reports_a_good_store_and_catches_a_damaged_one(full_run, tmp_path):
    _, flow = full_run
    good = inspect_store(flow.path("results/features/train/epoch_0.h5"))
    assert good["verdict"].startswith("ok") and good["complete"]
    assert good["datasets"]["features"]["dtype"] == "float16"
    assert good["provenance"]["epoch"] == 0
    assert inspect_store(flow.path("results/dataset/pixels.h5"))["verdict"].startswith("ok")
    assert inspect_store(flow.path("results/features/train.h5"))["verdict"].startswith("ok")

    copy = tmp_path / "epoch_0.h5"
    shutil.copy(flow.path("results/features/train/epoch_0.h5"), copy)
    with h5py.File(copy, "r+") as handle:  # new values, written without their checksum
        handle["features"][0] = handle["features"][0] + 1
    assert inspect_store(copy)["verdict"].startswith("damaged")

    with h5py.File(copy, "r+") as handle:
        handle.attrs["complete"] = False
    assert "incomplete" in inspect_store(copy)["verdict"]


def test_the_augcache_command_predicts_inspects_and_estimates(full_run, tmp_path):
    config, flow = full_run
    command = Path(sys.executable).with_name("augcache")
    assert command.exists(), "the package's console entry point is installed"
    out = tmp_path / "predictions.csv"
    run = subprocess.run([command, "predict", flow.path("results/model/model.keras"), config["predict"]["dir"],
                          out, "--batch-size", str(config["cache"]["batch_size"])], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert out.read_text() == flow.path("results/predict/predictions.csv").read_text()
    run = subprocess.run([command, "inspect", flow.path("results/features/val.h5")], capture_output=True,
                         text=True)
    assert run.returncode == 0 and "verdict: ok" in run.stdout
    run = subprocess.run([command, "estimate", ROOT / "config/config.yaml", overlay_file(config, tmp_path),
                          "--workdir", flow.root, "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["stores"] == estimate([ROOT / "config/config.yaml", tmp_path / "overlay.yaml"],
                                                         workdir=flow.root)["stores"]


def test_the_string_heap_of_sample_ids_is_their_utf8_bytes_rounded_up_to_8(tmp_path):
    """The disk plan counts a store's ids as their UTF-8 bytes, each rounded up to 8; a file holding
    them grows by at least that."""
    from augcache.jobs.plan import id_chars

    ids = ["a", "abcdefgh", "abcdefghi", "形状/x.png", "é" * 9]
    assert id_chars(ids) == 8 + 8 + 16 + 16 + 24
    assert id_chars([]) == 0
    sizes = {}
    for name, rows in (("few", ids[:1]), ("all", ids)):
        with h5py.File(tmp_path / f"{name}.h5", "w") as handle:
            handle.create_dataset("sample_ids", data=np.array(rows, dtype=object), dtype=h5py.string_dtype())
        sizes[name] = os.path.getsize(tmp_path / f"{name}.h5")
    assert sizes["all"] - sizes["few"] >= id_chars(ids) - id_chars(ids[:1])
