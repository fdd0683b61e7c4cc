"""The command, the package and the messages as a user meets them outside the workflow: the
installed `augcache` command run as a subprocess (exit code, stderr, never a traceback), the
package's metadata, the ./run script and the notebook API."""

import json
import os
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, Workflow

COMMAND = Path(sys.executable).with_name("augcache")


def augcache(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(COMMAND), *map(str, args)], capture_output=True, text=True, **kwargs)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    return result


def test_help_and_version_answer_without_tensorflow():
    # what makes --help slow is importing TensorFlow; none of these may
    code = ("import sys\nfrom augcache.cli import main\n"
            "for args in ([], ['predict'], ['inspect'], ['estimate'], ['gc']):\n"
            "    try:\n        main([*args, '--help'])\n    except SystemExit as end:\n"
            "        assert end.code == 0, (args, end.code)\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'h5py') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    version = augcache("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"augcache {metadata.version('augcache')}"


def test_inspect_names_what_is_not_a_store(tmp_path):
    missing = augcache("inspect", tmp_path / "nothing.h5")
    assert missing.returncode == 2 and "nothing.h5: no such file" in missing.stderr
    table = tmp_path / "index.csv"
    table.write_text("a,b\n1,2\n")
    csv = augcache("inspect", table)
    assert csv.returncode == 1 and "not an HDF5 file" in csv.stdout and "delete it" not in csv.stdout
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = np.arange(3)
    foreign = augcache("inspect", other)
    assert foreign.returncode == 1 and "not an augcache store (format None)" in foreign.stdout


def test_predict_names_the_missing_model_classes_and_folder(full_run, tmp_path):
    _, flow = full_run
    model = flow.path("results/model/model.keras")
    out = tmp_path / "p.csv"
    result = augcache("predict", tmp_path / "none.keras", tmp_path, out)
    assert result.returncode == 2 and "model:" in result.stderr and "none.keras does not exist" in result.stderr
    alone = tmp_path / "alone" / "model.keras"
    alone.parent.mkdir()
    alone.write_bytes(model.read_bytes())
    result = augcache("predict", alone, tmp_path, out)
    assert result.returncode == 2 and "classes.json does not exist" in result.stderr and "--classes" in result.stderr
    result = augcache("predict", model, tmp_path / "no_folder", out)
    assert result.returncode == 2 and "folder:" in result.stderr and "predict.dir" not in result.stderr
    assert not out.exists()


def test_predict_writes_the_top_k_and_every_probability(full_run, tmp_path):
    config, flow = full_run
    out = tmp_path / "p.csv"
    result = augcache("predict", flow.path("results/model/model.keras"), config["predict"]["dir"], out,
                      "--top-k", 2, "--probabilities", "--batch-size", config["cache"]["batch_size"])
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(out)
    classes = json.loads(flow.path("results/model/classes.json").read_text())["classes"]
    assert list(table.columns) == (["path", "label", "probability", "label_2", "probability_2"]
                                   + [f"probability_{c}" for c in classes])
    every = table[[f"probability_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(every.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(table["probability"], every.max(axis=1), rtol=1e-6)
    assert (table["probability"] >= table["probability_2"]).all() and (table["label"] != table["label_2"]).all()
    # the first three columns are those the workflow's prediction writes
    workflow = pd.read_csv(flow.path("results/predict/predictions.csv"))
    pd.testing.assert_frame_equal(table[["path", "label", "probability"]], workflow)


def test_a_gpu_list_that_names_no_device_is_refused(monkeypatch):
    from augcache.jobs.devices import machine_gpus

    monkeypatch.setenv("AUGCACHE_GPUS", "abc")
    with pytest.raises(ValueError, match=r"AUGCACHE_GPUS='abc': 'abc' is not a device"):
        machine_gpus()
    monkeypatch.setenv("AUGCACHE_GPUS", "0, GPU-8f6c1b2a-1d2e-4c3b-9a8b-7c6d5e4f3a2b")
    assert [g.id for g in machine_gpus()] == ["0", "GPU-8f6c1b2a-1d2e-4c3b-9a8b-7c6d5e4f3a2b"]


def test_importing_the_package_keeps_the_users_keras_backend():
    code = "import os, augcache; print(os.environ['KERAS_BACKEND'])"
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, KERAS_BACKEND="jax"))
    assert chosen.stdout.strip() == "jax", chosen.stderr[-2000:]
    unset = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    default = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=unset)
    assert default.stdout.strip() == "tensorflow"


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")


def _needs(distribution: str, seen: set) -> set:
    """distribution and every installed distribution it needs (extras left out), recursively."""
    name = _name(distribution)
    if name in seen:
        return seen
    seen.add(name)
    try:
        requires = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return seen
    for requirement in requires:
        if "extra ==" not in requirement and 'platform_system == "Windows"' not in requirement:
            _needs(requirement, seen)
    return seen


def test_tensorflow_is_an_extra_and_the_package_brings_the_schema(tmp_path):
    """`pip install .[jax]` installs no TensorFlow (nor keras-hub, which brings it); the tensorflow
    extra, which ./run installs, does."""
    requires = metadata.requires("augcache")
    base = [r for r in requires if "extra ==" not in r]
    jax = [r for r in requires if 'extra == "jax"' in r]
    assert jax and not any(_name(r) in ("tensorflow", "keras-hub") for r in base), base
    needed = set()
    for requirement in base + jax:
        _needs(requirement, needed)
    assert "keras" in needed and "jax" in needed and "tensorflow" not in needed, sorted(needed)
    assert any(_name(r) == "tensorflow" for r in requires if 'extra == "tensorflow"' in r)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("augcache-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "augcache/jobs/config.schema.yaml" in names and "augcache/store/features.py" in names
    assert "augcache/report/templates/report.html" in names  # the report renders from the installed package
    schema = zipfile.ZipFile(wheel).read("augcache/jobs/config.schema.yaml")
    assert schema == (ROOT / "workflow/schemas/config.schema.yaml").read_bytes()


def test_every_pyproject_dependency_has_its_exact_version_in_the_constraints():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    extras = project["optional-dependencies"]
    # what ./run installs: the package with TensorFlow, keras-hub and the test tools
    wanted = project["dependencies"] + extras["tensorflow"] + extras["hub"] + extras["test"]
    for requirement in wanted:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")
        assert name in pins, f"{name} has no exact version in constraints.txt"
        assert metadata.version(name) == pins[name], f"{name}: installed {metadata.version(name)}, pinned {pins[name]}"


def test_run_script_usage():
    helped = subprocess.run([str(ROOT / "run"), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "./run demo" in helped.stdout and "set -e" not in helped.stdout
    wrong = subprocess.run([str(ROOT / "run"), "nonsense"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "./run tests" in wrong.stderr


def test_an_error_in_a_variant_names_the_variant(tmp_path, tiny_data, tiny_base):
    from conftest import tiny_config

    flow = Workflow(tmp_path / "project")
    config = tiny_config(tiny_data, tiny_base, variants={"v1": {"augment": {"zoom_range": [1.2, 0.8]}}})
    result = flow.run(config, "-n", check=False)
    assert result.returncode != 0
    assert "variants.v1: augment.zoom_range: lower bound 1.2 exceeds upper bound 0.8" in result.stderr + result.stdout
    assert "localrules directive specifies rules that are not present" not in result.stderr + result.stdout


def readme_python_example() -> str:
    from test_docs import block

    return block(ROOT / "docs" / "how-to" / "notebook.md", "api example", "python")


def test_the_notebook_guides_example_runs_on_a_finished_run(full_run):
    _, flow = full_run
    result = subprocess.run([sys.executable, "-c", readme_python_example()], cwd=flow.root, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    import augcache

    run = augcache.open_run(flow.path("results"))
    modes = run.modes()
    assert set(modes["mode"]) == {"cached", "hybrid", "replay", "onthefly", "noaug", "featureaug"}
    summaries = run.runs()
    assert len(summaries) == len(list(flow.path("results/train").glob("*/*/summary.json")))
    epoch = run.features("train", epoch=1)
    with h5py.File(flow.path("results/features/train/epoch_1.h5")) as handle:
        np.testing.assert_array_equal(epoch.features, handle["features"][:].astype(np.float32))
        assert epoch.sample_ids == [s.decode() for s in handle["sample_ids"][:]]
    assert run.head().output.shape[-1] == len(run.classes) == run.model().output.shape[-1]
    assert run.curves("cached", k=2).shape[0] == full_run[0]["head"]["epochs"]
