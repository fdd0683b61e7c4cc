"""Each feature computed once: outputs keyed by what made them (results/cache), reused instead of
computed again after a rerun that changes nothing they depend on."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from augcache.reuse import collect_garbage
from conftest import LOCAL_RUN
from test_faults import job_pids


def extraction_logs(flow) -> dict[str, str]:
    return {str(p.relative_to(flow.path("results/logs"))): p.read_text()
            for p in flow.path("results/logs").rglob("extract/*.log")}


def store_inodes(flow) -> dict[str, tuple]:
    """(inode, size) of every feature store: the same inode is the same file, not a recomputed one."""
    return {str(p.relative_to(flow.root)): (p.stat().st_ino, p.stat().st_size)
            for p in flow.path("results/features").rglob("*.h5")}


def assert_reused_not_computed(logs: dict[str, str]) -> None:
    assert logs
    for name, text in logs.items():
        assert re.search(r"reused [0-9a-f]{64}", text), f"{name} computed again:\n{text[-1500:]}"
        assert "img/s" not in text, name


@pytest.fixture
def cache_copy(float32_runs, tmp_path):
    """A clone of the shared float32 cache (its results/cache included)."""
    config, (flow, _) = float32_runs
    return config, flow.clone(tmp_path / "project")


def test_touching_every_image_computes_no_feature(cache_copy, tiny_data):
    config, flow = cache_copy
    before = store_inodes(flow)
    images = [p for p in tiny_data.rglob("*.png")]
    times = {p: p.stat().st_mtime_ns for p in images}
    try:
        for image in images:  # the same bytes, a new modification time
            os.utime(image, ns=(times[image] + 10**9, times[image] + 10**9))
        dry = flow.run(config, "cache", "-n")
        assert "rule index_dataset" in dry.stdout  # the listing changed: the index is made again
        for log in flow.path("results/logs/extract").rglob("*.log"):
            log.unlink()
        flow.run(config, "cache")
    finally:
        for image, ns in times.items():
            os.utime(image, ns=(ns, ns))
    assert_reused_not_computed(extraction_logs(flow))
    after = store_inodes(flow)
    assert {k: v for k, v in after.items() if "train.h5" not in k} == \
        {k: v for k, v in before.items() if "train.h5" not in k}


def test_deleting_a_damaged_pixel_store_rebuilds_it_and_reuses_every_feature_store(cache_copy):
    """The pixel store damaged in place (its cached entry shares its bytes, so it fails too) and
    deleted, as its refusal advises; the rerun that needs it (one more epoch) decodes it again, and
    every store made before is reused."""
    config, flow = cache_copy
    import h5py

    pixels = flow.path("results/dataset/pixels.h5")
    with h5py.File(pixels, "r") as handle:
        digest = handle.attrs["pixels_sha256"]
    data = bytearray(pixels.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pixels.write_bytes(bytes(data))
    pixels.unlink()
    for log in flow.path("results/logs/extract").rglob("*.log"):
        log.unlink()
    k = config["cache"]["epochs"]
    flow.run(dict(config, cache=dict(config["cache"], epochs=k + 1)), "cache")
    index_log = flow.path("results/logs/index_dataset.log").read_text()
    assert "fails its sha256" in index_log and "reused" not in index_log
    with h5py.File(pixels, "r") as handle:
        assert handle.attrs["pixels_sha256"] == digest
    logs = extraction_logs(flow)
    assert "img/s" in logs.pop(f"extract/epoch_{k}.log")  # the new epoch
    assert_reused_not_computed(logs)


def test_a_cached_entry_whose_bytes_fail_their_checksum_is_computed_again(cache_copy):
    config, flow = cache_copy
    import h5py
    import numpy as np

    store = flow.path("results/features/train/epoch_1.h5")
    with h5py.File(store, "r") as handle:
        features = handle["features"][:]
    entry = next(p for p in flow.path("results/cache/extract_epoch").glob("*/0") if p.samefile(store))
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the entry and the output share their bytes: both are damaged
    entry.write_bytes(bytes(data))
    store.unlink()
    flow.run(config, "cache")
    log = flow.path("results/logs/extract/epoch_1.log").read_text()
    assert "fails its sha256" in log and "reused" not in log and "img/s" in log
    with h5py.File(store, "r") as handle:
        np.testing.assert_array_equal(handle["features"][:], features)


def test_a_store_finished_while_snakemake_is_killed_is_kept(cache_copy):
    """kill -9 of Snakemake itself as an extraction job finishes: the rerun keeps its store."""
    import signal
    import time

    import yaml

    config, flow = cache_copy
    more = dict(config, cache=dict(config["cache"], epochs=config["cache"]["epochs"] + 1))
    new_epoch = config["cache"]["epochs"]
    flow.path("overlay.yaml").write_text(yaml.safe_dump(more))
    process = subprocess.Popen([sys.executable, "-m", "snakemake", "cache", *LOCAL_RUN, "--configfile",
                                str(flow.path("overlay.yaml"))], cwd=flow.root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    store = flow.path(f"results/features/train/epoch_{new_epoch}.h5")
    deadline = time.monotonic() + 300
    while not store.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)  # the job process finishes on its own
    process.wait()
    assert store.exists(), "the extraction did not finish"
    time.sleep(3)
    made = store.stat().st_ino
    flow.run(more, "--unlock")
    flow.run(more, "cache", "--rerun-incomplete")
    assert flow.path(f"results/features/train/epoch_{new_epoch}.h5").stat().st_ino == made or \
        "reused" in flow.path(f"results/logs/extract/epoch_{new_epoch}.log").read_text()
    assert "img/s" not in flow.path(f"results/logs/extract/epoch_{new_epoch}.log").read_text().split(
        "job extract_epoch started")[-1]


def test_gc_removes_only_what_no_output_uses(cache_copy):
    config, flow = cache_copy
    cache = flow.path("results/cache")
    removed, _ = collect_garbage(cache, dry_run=True)
    assert removed == []  # every entry of a finished run is in use
    target = "results/features/train/epoch_0.h5"
    old = next(p for p in cache.glob("extract_epoch/*/0") if p.samefile(flow.path(target))).parent
    float16 = dict(config, cache=dict(config["cache"], dtype="float16"))
    flow.run(float16, target)  # epoch 0 replaced by its float16 store: its float32 entry is unused
    unused, freed = collect_garbage(cache, dry_run=True)
    assert unused == [old] and freed > 0
    command = subprocess.run([Path(sys.executable).with_name("augcache"), "gc", "--workdir", flow.root],
                             capture_output=True, text=True)
    assert command.returncode == 0 and "1 unused entry" in command.stdout, command.stderr
    assert not old.exists()
    assert "Nothing to be done" in flow.run(float16, target, "-n").stdout
    for store in flow.path("results/features/train").glob("epoch_*.h5"):
        assert store.stat().st_nlink == 2, store  # each still linked from its kept entry


def test_a_killed_job_of_several_epochs_keeps_those_it_finished(float32_runs, tmp_path):
    """kill -9 of a job extracting epochs 0-2 once epoch 0 is done: the rerun reuses epoch 0 and
    computes the others, the same bytes as one job per epoch."""
    import shutil
    import signal
    import time

    import yaml

    from conftest import GROUPED

    config, (_, grouped) = float32_runs
    flow = grouped.clone(tmp_path / "project")
    shutil.rmtree(flow.path("results/cache"))
    for epoch in range(3):
        flow.path(f"results/features/train/epoch_{epoch}.h5").unlink()
    more = dict(config, cache=dict(config["cache"], **GROUPED))
    flow.path("overlay.yaml").write_text(yaml.safe_dump(more))
    log = flow.path("results/logs/extract/epochs_0-2.log")
    log.unlink()
    process = subprocess.Popen([sys.executable, "-m", "snakemake", "cache", *LOCAL_RUN, "--configfile",
                                str(flow.path("overlay.yaml"))], cwd=flow.root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if log.exists() and "epoch 1:" in log.read_text():  # epoch 0 stored and kept, epoch 1 begun
            job = next((pid for pid in job_pids("extract_epochs.py")), None)
            if job:
                os.kill(job, signal.SIGKILL)
                break
        time.sleep(0.005)
    process.wait()
    assert process.returncode != 0
    assert not flow.path("results/features/train/epoch_1.h5").exists()
    flow.run(more, "cache")
    text = log.read_text()
    assert re.search(r"reused [0-9a-f]{64}", text) and text.count("img/s") >= 1
    assert "epoch 0: " not in text and "epoch 2: 18/18" in text  # 0 not computed again
    _, (first, _) = float32_runs
    import h5py

    for epoch in range(3):
        with h5py.File(flow.path(f"results/features/train/epoch_{epoch}.h5")) as a, \
                h5py.File(first.path(f"results/features/train/epoch_{epoch}.h5")) as b:
            assert a["features"][:].tobytes() == b["features"][:].tobytes()


def test_a_key_changes_with_the_code_that_computes(tmp_path):
    """Editing a module of the package or the job's rule script gives new keys: an entry made by
    other code is never reused."""
    import shutil

    from conftest import ROOT

    for part in ("augcache", "scripts"):
        shutil.copytree(ROOT / part, tmp_path / part, symlinks=True)

    def key(kind):
        code = ("from augcache.reuse import job_key; "
                f"print(job_key({kind!r}, {{'a': 1}}, {{}}, {{}})[0])")
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(tmp_path)),
                              capture_output=True, text=True, check=True).stdout.strip()

    before = key("extract_epoch"), key("train_head")
    assert len(set(before)) == 2
    with open(tmp_path / "augcache/augment.py", "a") as module:
        module.write("\n# edited\n")
    after_module = key("extract_epoch"), key("train_head")
    assert after_module[0] != before[0] and after_module[1] != before[1]
    with open(tmp_path / "scripts/train_head.py", "a") as script:
        script.write("\n# edited\n")
    assert key("extract_epoch") == after_module[0]
    assert key("train_head") != after_module[1]


def test_a_job_of_several_epochs_reuses_the_epochs_jobs_of_one_made(float32_runs, tmp_path):
    """Epoch stores made one per job, lost, then wanted by a job of several epochs: each is reused."""
    from conftest import GROUPED

    config, (first, _) = float32_runs
    flow = first.clone(tmp_path / "project")
    for epoch in range(3):
        flow.path(f"results/features/train/epoch_{epoch}.h5").unlink()
    flow.run(dict(config, cache=dict(config["cache"], **GROUPED)), "cache")
    text = flow.path("results/logs/extract/epochs_0-2.log").read_text()
    assert len(re.findall(r"reused [0-9a-f]{64}", text)) == 3 and "img/s" not in text, text[-2000:]
    for epoch in range(3):
        store = f"results/features/train/epoch_{epoch}.h5"
        assert flow.path(store).read_bytes() == first.path(store).read_bytes()
