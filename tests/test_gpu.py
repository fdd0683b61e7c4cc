"""GPU jobs on a workstation: one device slot per job, released by the kernel, and environments that
import the workflow's own package. Proven with fake device lists (AUGCACHE_GPUS) on this CPU machine."""

import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from augcache.jobs.devices import Gpu, _try_lock, assign_device, claim_gpu, machine_gpus, parse_nvidia_smi
from conftest import LOCAL_RUN, Workflow, tiny_config

SMI = """GPU 0: NVIDIA H200 (UUID: GPU-1b2c3d4e-aaaa-bbbb-cccc-000000000000)
GPU 1: NVIDIA H200 (UUID: GPU-1b2c3d4e-aaaa-bbbb-cccc-000000000001)
"""


def test_gpus_come_from_nvidia_smi_or_the_override(monkeypatch):
    assert parse_nvidia_smi(SMI) == [Gpu("0", "NVIDIA H200"), Gpu("1", "NVIDIA H200")]
    monkeypatch.setenv("AUGCACHE_GPUS", "2, 5")
    assert machine_gpus() == [Gpu("2"), Gpu("5")]
    monkeypatch.setenv("AUGCACHE_GPUS", "")
    assert machine_gpus() == []


def test_jobs_without_a_gpu_see_none_and_gpu_jobs_one_each(monkeypatch, tmp_path):
    monkeypatch.setenv("AUGCACHE_GPUS", "0,1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "unset by the test")  # restored afterwards
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert assign_device(False, tmp_path) == ""
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
    assert assign_device(True, tmp_path) == "0"
    held = _try_lock(tmp_path / "gpu_0.lock")
    assert held is None  # this process holds device 0 now
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert assign_device(True, tmp_path) == "3"  # the scheduler's choice is kept


HOLDER = """
import sys, time
from augcache.jobs.devices import Gpu, claim_gpu
slot = claim_gpu([Gpu("0")], sys.argv[1])
print("holding", slot.gpu.id, flush=True)
time.sleep(600)
"""


def test_a_killed_job_frees_its_device_at_once(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding 0"
        assert _try_lock(tmp_path / "gpu_0.lock") is None  # held by the other process
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    start = time.monotonic()
    slot = claim_gpu([Gpu("0")], tmp_path, poll=0.1)
    assert slot.gpu.id == "0" and time.monotonic() - start < 1.0


def log_times(log: Path):
    """(start, end) of a job from the first and last timestamps of its log."""
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})", log.read_text(), re.M)
    parse = lambda s: datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f")  # noqa: E731
    return parse(stamps[0]), parse(stamps[-1])


def visible_device(log: Path) -> str:
    match = re.search(r"CUDA_VISIBLE_DEVICES=(\S*) \(declares", log.read_text())
    assert match, f"{log} does not show CUDA_VISIBLE_DEVICES"
    return match.group(1)


def test_two_fake_gpus_run_two_extractions_at_once_each_on_its_own(tmp_path, tiny_data, tiny_base, monkeypatch):
    monkeypatch.setenv("AUGCACHE_GPUS", "0,1")
    monkeypatch.setenv("AUGCACHE_GPU_LOCKS", str(tmp_path / "locks"))
    flow = Workflow(tmp_path / "project")
    # one thread per extraction, so that two fit the test's two cores at once
    flow.run(tiny_config(tiny_data, tiny_base, cache={"k": 4}), "cache", "--set-threads", "extract_epoch=1",
             "extract_val=1")
    logs = flow.path("results/logs")
    gpu_jobs = sorted(logs.glob("extract/*.log"))
    assert len(gpu_jobs) == 5  # 4 epochs and val
    jobs = [(log, visible_device(log), *log_times(log)) for log in gpu_jobs]
    assert {device for _, device, _, _ in jobs} == {"0", "1"}
    overlapping = 0
    for i, (a, dev_a, start_a, end_a) in enumerate(jobs):
        for b, dev_b, start_b, end_b in jobs[i + 1:]:
            if start_a < end_b and start_b < end_a:
                overlapping += 1
                assert dev_a != dev_b, f"{a.name} and {b.name} ran at once on device {dev_a}"
    assert overlapping >= 1, "no two extractions ran at once"
    for log in [*logs.glob("manifest/*.log"), logs / "index_dataset.log", *logs.glob("check_conv_base/*.log"),
                logs / "merge_epochs.log"]:
        assert visible_device(log) == '""', log


def test_rule_scripts_import_the_workflows_own_package(tmp_path, tiny_data, tiny_base):
    """Under --sdm conda the environment has the dependencies but not augcache: a second virtual
    environment like that (the dependencies through a .pth file) must run the workflow."""
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    bare = subprocess.run([str(python), "-c", "import augcache"], cwd=tmp_path, capture_output=True, text=True)
    assert "No module named 'augcache'" in bare.stderr
    assert subprocess.run([str(python), "-c", "import tensorflow, snakemake"], cwd=tmp_path).returncode == 0

    flow = Workflow(tmp_path / "project")
    config = tiny_config(tiny_data, tiny_base, cache={"k": 1})
    import yaml

    flow.path("overlay.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([str(python), "-m", "snakemake", "cache", *LOCAL_RUN, "--configfile",
                             str(flow.path("overlay.yaml"))], cwd=flow.root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    assert flow.path("results/features/train.h5").exists()


def test_mixed_bfloat16_extraction_is_replayed_exactly_and_close_to_float32(tmp_path, tiny_data, tiny_base):
    import h5py
    import numpy as np

    from augcache.base.conv_base import BaseSpec, build_base, feature_function
    from augcache.base.extract import compute_features
    from augcache.augmentation.manifest import AugmentConfig, read_manifest
    from augcache.data.pixels import open_pixels

    config = tiny_config(tiny_data, tiny_base, cache={"k": 1, "dtype": "float32",
                                                       "compute_dtype": "mixed_bfloat16"})
    flow = Workflow(tmp_path / "project")
    flow.run(config, "cache")
    manifest = read_manifest(flow.path("results/manifest/epoch_0.csv"))
    with h5py.File(flow.path("results/features/train/epoch_0.h5"), "r") as store:
        cached = store["features"][:]
        assert store.attrs["compute_dtype"] == "mixed_bfloat16"
        assert store.attrs["device"] == "cpu"
    size = tuple(config["data"]["image_size"])
    pixels = open_pixels(size, "stretch", flow.path("results/dataset/pixels.h5"),
                         flow.path("results/dataset/index.csv"))
    resampling = AugmentConfig.from_config(config["augment"]).resampling
    computed = {}
    for policy in ("mixed_bfloat16", "float32"):
        spec = BaseSpec.from_config({**config["conv_base"], "image_size": size, "seed": config["seed"],
                                     "compute_dtype": policy})
        model, preprocess = build_base(spec)
        computed[policy] = compute_features(manifest, pixels, feature_function(model, preprocess, size), size,
                                            config["cache"]["batch_size"], resampling)
    # replay runs the same code under the same policy: the same numbers
    assert cached.tobytes() == computed["mixed_bfloat16"].tobytes()
    # bfloat16 keeps 8 bits of mantissa: the GPU guide documents the relative error against float32
    error = np.abs(cached - computed["float32"]).max() / np.abs(computed["float32"]).max()
    assert 0 < error < 0.02, error
