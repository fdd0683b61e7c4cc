"""The whole workflow under Keras' JAX and torch backends on a machine without TensorFlow: every
job runs, stores and runs record the backend, cached = replay within it, two runs give the same
bytes, and its numbers agree with TensorFlow's."""

import json
import os
import re
import shutil
import subprocess
import sys

import h5py
import keras
import numpy as np
import pandas as pd
import pytest

from augcache.report.tables import REPLAY_TOLERANCE
from augcache.training.modes import mode
from conftest import JAX_TARGETS, Workflow

# How far a backend's mean final validation accuracy (over its runs of repeat 0: cached, replay, on
# the fly and no augmentation under JAX; cached and replay under torch) may lie from TensorFlow's
# runs of the same modes and config: a head starts from other random weights under another backend
# (Keras draws them with the backend's generator), and 6 validation images make one image 0.17 of
# accuracy. Measured: 0.33 under JAX against 0.29 under TensorFlow (four runs); 0.50 under torch
# against 0.33 (cached and replay).
ACCURACY_TOLERANCE = 0.25
# Features of the same base on the same pixels, computed by XLA (JAX), by PyTorch and by
# TensorFlow's kernels and stored as float16 (relative step 2^-10): at most a step apart.
FEATURE_RTOL, FEATURE_ATOL = 2e-3, 1e-5

# Each test of this name runs on both backends' shared runs (conftest: jax_runs, torch_run); the
# parameter names the run, which conftest starts with the others.
EACH_BACKEND = pytest.mark.parametrize("shared", ["jax_runs", "torch_run"])


def backend_run(request, shared):
    """(backend, config, flow) of a shared run under another backend than TensorFlow."""
    config, (flow, *_) = request.getfixturevalue(shared)
    return config["software"]["backend"], config, flow


def stores(flow) -> list:
    return sorted(p.relative_to(flow.root) for p in flow.path("results/features").rglob("*.h5"))


def head_weights(path) -> list[bytes]:
    return [np.asarray(w).tobytes() for w in keras.saving.load_model(path, compile=False).get_weights()]


def run_modes(config) -> list[str]:
    """The folders of the runs of repeat 0 (K = cache.k) a config trains."""
    return [mode(name).run_dir(config["cache"]["k"], 0) for name in config["train"]["modes"]]


def same_metrics(a, b) -> bool:
    """Two runs' metrics.csv equal but for what the epochs took."""
    timings = ["seconds", "conv_seconds"]
    return pd.read_csv(a).drop(columns=timings).equals(pd.read_csv(b).drop(columns=timings))


@EACH_BACKEND
def test_no_job_could_import_tensorflow(request, shared):
    _, _, flow = backend_run(request, shared)
    tried = subprocess.run([sys.executable, "-c", "import tensorflow"], env=flow.env, capture_output=True, text=True)
    assert tried.returncode != 0 and "No module named 'tensorflow'" in tried.stderr


@EACH_BACKEND
def test_every_store_and_run_records_its_backend(request, shared):
    backend, config, flow = backend_run(request, shared)
    assert len(stores(flow)) >= 4  # val, both epochs and their merge at least
    for store in stores(flow):
        with h5py.File(flow.path(str(store))) as f:
            assert f.attrs["keras_backend"] == backend, store
    for run in run_modes(config):
        summary = json.loads(flow.path(f"{run}/summary.json").read_text())
        assert summary.get("keras_backend") == backend, run


@EACH_BACKEND
def test_the_export_is_a_keras_model_without_a_saved_model(request, shared, tmp_path):
    backend, config, flow = backend_run(request, shared)
    assert flow.path("results/model/model.keras").is_file()
    assert not flow.path("results/model/saved_model").exists()
    assert "no TensorFlow SavedModel" in flow.path("results/logs/export_model.log").read_text()
    # the command classifies with it under the backend, without TensorFlow, as the workflow's predict did
    out = tmp_path / "again.csv"
    subprocess.run([sys.executable, "-m", "augcache.cli", "predict", str(flow.path("results/model/model.keras")),
                    config["predict"]["dir"], str(out)],
                   env=dict(flow.env, KERAS_BACKEND=backend), check=True, capture_output=True, text=True)
    workflow = pd.read_csv(flow.path("results/predict/predictions.csv"))
    command = pd.read_csv(out)
    assert len(workflow) == 6
    assert workflow["label"].tolist() == command["label"].tolist()
    np.testing.assert_allclose(workflow["probability"], command["probability"], rtol=1e-5)


@EACH_BACKEND
def test_replay_reproduces_cached_within_the_backend(request, shared):
    _, _, flow = backend_run(request, shared)
    cached = pd.read_csv(flow.path("results/train/cached/k2_r0/metrics.csv"))
    replay = pd.read_csv(flow.path("results/train/replay/k2_r0/metrics.csv"))
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert np.abs(cached[column] - replay[column]).max() <= REPLAY_TOLERANCE, column
    report = flow.path("results/report/report.html").read_text()
    assert "<b>reproduces</b>" in report
    assert float(re.search(r'id="replay-max-diff">([^<]+)<', report).group(1)) <= REPLAY_TOLERANCE


def test_two_jax_runs_are_byte_identical(jax_runs):
    _, (first, second) = jax_runs
    assert stores(second) and set(stores(second)) <= set(stores(first))
    for store in stores(second):
        with h5py.File(first.path(str(store))) as a, h5py.File(second.path(str(store))) as b:
            assert a["features"][:].tobytes() == b["features"][:].tobytes(), store
    for target in JAX_TARGETS[1:]:
        assert head_weights(first.path(target)) == head_weights(second.path(target)), target
        metrics = target.replace("head.keras", "metrics.csv")
        assert same_metrics(first.path(metrics), second.path(metrics)), metrics


@EACH_BACKEND
def test_the_backend_agrees_with_tensorflow(request, shared, full_run):
    """The same stores and runs under TensorFlow (the shared full run): the same manifests,
    features within a float16 step, and final accuracy within ACCURACY_TOLERANCE."""
    backend, config, other = backend_run(request, shared)
    _, tensorflow = full_run
    for epoch in range(2):
        manifest = f"results/manifest/epoch_{epoch}.csv"
        assert other.path(manifest).read_bytes() == tensorflow.path(manifest).read_bytes()
    for store in ("results/features/val.h5", "results/features/train/epoch_1.h5"):
        with h5py.File(other.path(store)) as a, h5py.File(tensorflow.path(store)) as b:
            assert a.attrs["keras_backend"] == backend and b.attrs["keras_backend"] == "tensorflow"
            np.testing.assert_allclose(a["features"][:].astype(np.float32), b["features"][:].astype(np.float32),
                                       rtol=FEATURE_RTOL, atol=FEATURE_ATOL)
    runs = run_modes(config)
    accuracy = {name: np.mean([json.loads(flow.path(f"{run}/summary.json").read_text())["final_val_accuracy"]
                               for run in runs])
                for name, flow in ((backend, other), ("tensorflow", tensorflow))}
    assert abs(accuracy[backend] - accuracy["tensorflow"]) <= ACCURACY_TOLERANCE, accuracy


def test_a_run_under_another_backend_refuses_the_stores_of_this_one(jax_runs, tmp_path):
    """Training under TensorFlow on the JAX run's stores (only the base check and the training
    rule allowed to run) stops, naming the store and keras_backend."""
    config, (flow, _) = jax_runs
    clone = Workflow(tmp_path / "project", finished=flow, env={k: v for k, v in os.environ.items()
                                                               if k != "KERAS_BACKEND"})
    tensorflow = dict(config, software={"backend": "tensorflow"})
    result = clone.run(tensorflow, "results/train/cached/k2_r0/summary.json", "--forcerun", "train_cached",
                       "--allowed-rules", "train_cached", "check_conv_base", check=False)
    assert result.returncode != 0
    log = clone.path("results/logs/train/cached/k2_r0.log").read_text()
    assert "results/features/val.h5: provenance field 'keras_backend' is 'jax', expected 'tensorflow'" in log, \
        log[-2000:]


def test_the_backend_is_chosen_by_config_then_environment(monkeypatch):
    from augcache.core import backend

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backend.chosen(None) == "tensorflow"
    assert backend.chosen("jax") == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert backend.chosen(None) == "jax"
    assert backend.chosen("tensorflow") == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "theano")
    try:
        backend.chosen(None)
    except ValueError as err:
        assert "KERAS_BACKEND=theano" in str(err)
    else:
        raise AssertionError("an unknown backend was accepted")


def test_a_backend_that_is_not_installed_is_named_with_its_extra():
    from conftest import WITHOUT_TENSORFLOW

    code = WITHOUT_TENSORFLOW + "\nfrom augcache.core import backend\nbackend.use('tensorflow')\n"
    tried = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert tried.returncode != 0
    assert "is tensorflow, which is not installed in this environment: pip install 'augcache[tensorflow]'" \
        in tried.stderr, tried.stderr[-2000:]


def test_streamed_training_under_jax_matches_the_in_memory_run(jax_runs, tmp_path):
    """The cached run again with a memory budget that streams its training and validation blocks
    (generators fed to fit outside TensorFlow): the JAX workflow's metrics."""
    from conftest import ROOT, WITHOUT_TENSORFLOW

    config, (flow, _) = jax_runs
    code = WITHOUT_TENSORFLOW + f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(ROOT / 'tests')!r})
from test_stream import run_with_budget

class Flow:
    def path(self, relative):
        return Path({str(flow.root)!r}) / relative

metrics, summary = run_with_budget(json.loads({json.dumps(config)!r}), Flow(), Path({str(tmp_path)!r}),
                                   "cached", "cached/k2_r0", budget=0.01)
print(summary["features_from"], summary["keras_backend"])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(flow.env, KERAS_BACKEND="jax"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["stream", "jax"]
    streamed = pd.read_csv(tmp_path / "cached/k2_r0/metrics.csv")
    in_memory = pd.read_csv(flow.path("results/train/cached/k2_r0/metrics.csv"))
    assert len(streamed) == config["head"]["epochs"]
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(streamed[column], in_memory[column], rtol=1e-5, atol=1e-6)


def test_training_under_torch_again_gives_the_same_bytes(torch_run, tmp_path):
    """The cached run trained again on a copy of the torch run (its stores kept): the same head
    weights and metrics, byte for byte. (Extraction twice under torch: tests/test_gpu_check.py.)"""
    config, (flow,) = torch_run
    again = Workflow(tmp_path / "project", finished=flow)
    shutil.rmtree(again.path("results/reuse/train_head"))  # computed, not put back from its kept outputs
    target = "results/train/cached/k2_r0/head.keras"
    again.run(config, target, "--forcerun", "train_cached", "--allowed-rules", "train_cached", "check_conv_base")
    log = again.path("results/logs/train/cached/k2_r0.log").read_text()
    assert "computing" in log.split("job train_cached started")[-1], log[-2000:]
    assert head_weights(again.path(target)) == head_weights(flow.path(target))
    metrics = "results/train/cached/k2_r0/metrics.csv"
    assert same_metrics(again.path(metrics), flow.path(metrics))
