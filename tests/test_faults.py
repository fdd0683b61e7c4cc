"""Faults and scale: sharded epochs, killed jobs, corrupted or foreign stores, a full disk."""

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from augcache.core.provenance import ProvenanceError
from augcache.jobs.extraction import shard_rows
from augcache.store.features import FeatureWriter
from augcache.store.merge import merge_shards
from augcache.store.writer import StoreError
from conftest import LOCAL_RUN, Workflow


def assert_same_store_data(a, b):
    """Features and labels of two stores are byte-identical, their sample ids equal."""
    with h5py.File(a, "r") as left, h5py.File(b, "r") as right:
        for name in ("features", "labels"):
            assert left[name].dtype == right[name].dtype, name
            assert left[name].shape == right[name].shape, name
            assert left[name][()].tobytes() == right[name][()].tobytes(), f"{a} and {b} differ in {name}"
        assert left["features"].chunks == right["features"].chunks
        assert left["sample_ids"][()].tolist() == right["sample_ids"][()].tolist()


def test_shards_are_cut_between_whole_batches():
    assert [shard_rows(18, 4, 3, s) for s in range(3)] == [(0, 8), (8, 16), (16, 18)]
    assert [shard_rows(10, 4, 5, s) for s in range(5)] == [(0, 4), (4, 8), (8, 10), (10, 10), (10, 10)]
    assert shard_rows(7, 64, 1, 0) == (0, 7)
    with pytest.raises(ValueError, match="shard 3 is not one of 0..2"):
        shard_rows(18, 4, 3, 3)


def write_shard(path, shard, shards, start, stop, epoch=0):
    attrs = {"split": "train", "epoch": epoch, "manifest_sha256": "m", "shard": shard, "shards": shards,
             "row_start": start, "row_stop": stop}
    with FeatureWriter(path, stop - start, (2,), "float16", attrs) as writer:
        writer.write(np.arange(start, stop, dtype=np.float32)[:, None].repeat(2, 1), np.arange(start, stop),
                     [f"s{i}" for i in range(start, stop)])


def test_merged_shards_refuse_a_gap_or_another_epoch(tmp_path):
    write_shard(tmp_path / "0.h5", 0, 2, 0, 4)
    write_shard(tmp_path / "1.h5", 1, 2, 4, 6)
    attrs = merge_shards([tmp_path / "0.h5", tmp_path / "1.h5"], tmp_path / "epoch.h5", block_rows=3)
    assert attrs["n_samples"] == 6
    with h5py.File(tmp_path / "epoch.h5", "r") as handle:
        assert handle["features"][:, 0].tolist() == [0, 1, 2, 3, 4, 5]
        assert "shard" not in handle.attrs and handle.attrs["epoch"] == 0

    write_shard(tmp_path / "gap.h5", 1, 2, 5, 6)
    with pytest.raises(ProvenanceError, match=f"{tmp_path / 'gap.h5'}: provenance field 'row_start' is 5"):
        merge_shards([tmp_path / "0.h5", tmp_path / "gap.h5"], tmp_path / "bad.h5")
    write_shard(tmp_path / "other.h5", 1, 2, 4, 6, epoch=1)
    with pytest.raises(ProvenanceError, match=f"{tmp_path / 'other.h5'}: provenance field 'epoch' is 1"):
        merge_shards([tmp_path / "0.h5", tmp_path / "other.h5"], tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


def without_epochs(full_run, root: Path) -> Workflow:
    """A clone of the full run without its cached outputs (results/reuse) nor repeat 0's epoch
    stores: the next run of it computes them, and what they are made from is there already."""
    import shutil

    _, finished = full_run
    flow = finished.clone(root)
    shutil.rmtree(flow.path("results/reuse"))
    for store in flow.path("results/features/train").glob("epoch_*.h5"):
        store.unlink()
    return flow


def test_sharded_epochs_equal_one_job_per_epoch(full_run, tmp_path):
    config, unsharded = full_run
    flow = without_epochs(full_run, tmp_path / "project")
    sharded_config = dict(config, cache=dict(config["cache"], shards_per_epoch=3))
    result = flow.run(sharded_config, "cache")
    output = result.stdout + result.stderr
    assert output.count("rule extract_shard:") == 3 * config["cache"]["k"]
    assert output.count("rule merge_shards:") == config["cache"]["k"]
    for epoch in range(config["cache"]["k"]):
        logs = sorted(flow.path(f"results/logs/extract/epoch_{epoch}").glob("shard_*.log"))
        assert len(logs) == 3
        assert "rows 16-18" in logs[2].read_text()
        assert_same_store_data(flow.path(f"results/features/train/epoch_{epoch}.h5"),
                               unsharded.path(f"results/features/train/epoch_{epoch}.h5"))
        assert not flow.path(f"results/features/train/epoch_{epoch}").exists()  # shards removed
    # a merged epoch takes the key of one job per epoch: the unsharded run kept the same entries
    kept = {p.parent.name for p in flow.path("results/reuse/extract_epoch").glob("*/entry.json")}
    assert len(kept) == config["cache"]["k"]
    assert kept <= {p.parent.name for p in unsharded.path("results/reuse/extract_epoch").glob("*/entry.json")}
    # and sharded epochs are reused: lost, they are put in place again, no shard computed
    for store in flow.path("results/features/train").glob("epoch_*.h5"):
        store.unlink()
    for log in flow.path("results/logs/extract").rglob("*.log"):
        log.unlink()
    flow.run(sharded_config, "cache")
    for epoch in range(config["cache"]["k"]):
        for log in flow.path(f"results/logs/extract/epoch_{epoch}").glob("shard_*.log"):
            assert "shard not computed" in log.read_text() and "img/s" not in log.read_text()
        merge_log = flow.path(f"results/logs/merge_shards/epoch_{epoch}.log").read_text()
        assert re.search(r"reused [0-9a-f]{64}", merge_log), merge_log[-2000:]
        assert_same_store_data(flow.path(f"results/features/train/epoch_{epoch}.h5"),
                               unsharded.path(f"results/features/train/epoch_{epoch}.h5"))
        assert not flow.path(f"results/features/train/epoch_{epoch}").exists()


# --- corrupted or foreign stores -------------------------------------------------------------------

def make_store(path, n=40):
    with FeatureWriter(path, n, (8, 8, 4), "float16", {"split": "train", "weights_sha256": "w1"}) as writer:
        writer.write(np.random.default_rng(0).normal(size=(n, 8, 8, 4)), np.arange(n) % 3,
                     [f"s{i}" for i in range(n)])
    return path


def read_everything(path):
    """Every way the workflow reads a store: attributes, in memory, streamed."""
    from augcache.store.features import check_store
    from augcache.store.stream import StoreBlocks
    from augcache.store.features import load_store

    check_store(path, {})
    load_store(path, {})
    list(StoreBlocks(path, rows_per_block=16))


def test_a_truncated_store_is_refused(tmp_path):
    path = make_store(tmp_path / "epoch_0.h5")
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)
    with pytest.raises(StoreError, match=rf"{path}: file is truncated \({size // 2} of {size} bytes\); "
                                         "delete it and rerun"):
        read_everything(path)


def test_a_store_missing_a_dataset_is_refused(tmp_path):
    path = make_store(tmp_path / "epoch_0.h5")
    with h5py.File(path, "a") as handle:
        del handle["sample_ids"]
    with pytest.raises(StoreError, match=f"{path}: dataset\\(s\\) sample_ids missing"):
        read_everything(path)


def test_a_store_of_another_config_is_refused(tmp_path):
    from augcache.training.train import StreamedEpochs
    from augcache.store.features import load_store

    path = make_store(tmp_path / "epoch_0.h5")
    with pytest.raises(ProvenanceError, match=f"{path}: provenance field 'weights_sha256' is 'w1', "
                                              "expected 'w2'"):
        load_store(path, {"weights_sha256": "w2"})
    manifest = tmp_path / "epoch_0.csv"
    manifest.write_text("a manifest this store was not made from\n")
    with pytest.raises(ProvenanceError, match=f"{path}: provenance field 'epoch' is missing"):
        StreamedEpochs([path], [manifest], {}, rows_per_block=8)


def test_damaged_feature_bytes_fail_their_checksum(tmp_path):
    path = make_store(tmp_path / "epoch_0.h5")
    with h5py.File(path, "r") as handle:
        offset = handle["features"].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as handle:
        handle.seek(offset + 100)
        byte = handle.read(1)
        handle.seek(offset + 100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(StoreError, match=f"{path}: damaged: stored bytes fail their checksum"):
        read_everything(path)


# --- disk full -------------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root, as in CI)."""
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def write_random(path, n, compression=None):
    with FeatureWriter(path, n, (500,), "float16", {"split": "train"}, compression) as writer:
        for start in range(0, n, 100):
            rows = min(100, n - start)
            writer.write(np.random.default_rng(start).random((rows, 500)), np.zeros(rows),
                         [f"s{i}" for i in range(start, start + rows)])


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_a_store_larger_than_the_disk_fails_before_writing(small_disk, compression):
    path = small_disk / "epoch_0.h5"
    with pytest.raises(OSError, match=f"{path}: disk full: the store needs up to 1.3 MiB, nothing was "
                                      f"written; 1.0 MiB free on {small_disk}"):
        write_random(path, 1000, compression)
    assert list(small_disk.iterdir()) == []
    write_random(path, 300, compression)  # what fits is written, and trimmed to its size
    assert path.stat().st_size < 400_000


def test_space_taken_by_others_meanwhile_is_caught_by_the_reservation(small_disk, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(1 << 30, 0, 1 << 30))
    path = small_disk / "epoch_0.h5"
    with pytest.raises(OSError, match=f"{path}: disk full"):
        write_random(path, 1000)
    assert list(small_disk.iterdir()) == []


def test_extraction_on_a_full_disk_says_so_and_keeps_what_was_computed(full_run, tmp_path):
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    config, _ = full_run
    flow = without_epochs(full_run, tmp_path / "project")
    stores = flow.path("results/features/train")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(stores)], check=True)
    try:
        result = flow.run(config, "cache", check=False)
        assert result.returncode != 0
        # the first epoch job to start (any of them) says so
        logs = {p.stem: p.read_text() for p in flow.path("results/logs/extract").glob("epoch_*.log")}
        full = [name for name, log in logs.items()
                if f"results/features/train/{name}.h5: disk full: the store needs up to" in log]
        assert full, logs
        assert "nothing was written" in logs[full[0]]
        assert list(stores.iterdir()) == []
        manifest = flow.path("results/manifest/epoch_0.csv")
        made = manifest.stat().st_mtime_ns
    finally:
        subprocess.run(["umount", str(stores)], check=True)
    result = flow.run(config, "cache")
    assert "rule write_manifest:" not in result.stdout + result.stderr
    assert manifest.stat().st_mtime_ns == made
    assert flow.path("results/features/train.h5").exists()


# --- kill and resume -------------------------------------------------------------------------------

def job_pids(script: str) -> list[int]:
    """Processes running a Snakemake copy of scripts/<script>."""
    import os

    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace")
            except OSError:
                continue
            if ".snakemake/scripts/tmp" in cmdline and cmdline.rstrip("\0").endswith(f".{script}"):
                pids.append(int(entry))
    return pids


def run_and_kill(flow, config, target, find_pid, timeout=300):
    """Run snakemake; kill -9 the process find_pid() names as soon as it names one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    overlay = flow.root / "overlay.yaml"
    overlay.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", target, *LOCAL_RUN, "--configfile", str(overlay)]
    process = subprocess.Popen(command, cwd=flow.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    deadline = time.monotonic() + timeout
    killed = None
    while killed is None and time.monotonic() < deadline and process.poll() is None:
        pid = find_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            killed = pid
        time.sleep(0.005)
    output, _ = process.communicate(timeout=timeout)
    assert killed is not None, f"no job was seen to kill:\n{output[-3000:]}"
    assert process.returncode != 0, output[-3000:]
    return output


def writer_of(folder, name):
    """find_pid: the process writing `name` in `folder` (its temporary file names it)."""
    def find():
        for tmp in folder.glob(f".{name}.*.tmp") if folder.is_dir() else ():
            return int(tmp.name.split(".")[-2])
        return None
    return find


def job_after(log, line, script):
    """find_pid: the job running `script`, once its log holds `line`."""
    def find():
        if log.exists() and line in log.read_text():
            pids = job_pids(script)
            return pids[0] if pids else None
        return None
    return find


def stores_made(flow):
    """{store path under results/features: mtime}"""
    root = flow.path("results/features")
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.h5")}


def head_weights(path):
    import keras

    return [np.asarray(w).tobytes() for w in keras.saving.load_model(path).get_weights()]


def test_killed_jobs_resume_to_the_uninterrupted_results(full_run, tmp_path):
    import os
    import shutil

    config, reference = full_run
    flow = without_epochs(full_run, tmp_path / "project")
    head = "results/train/cached/k2_r0/head.keras"
    shutil.rmtree(flow.path("results/train/cached/k2_r0"))
    flow.path("results/logs/train/cached/k2_r0.log").unlink()
    # kill -9 an extraction while it writes its store
    run_and_kill(flow, config, head, writer_of(flow.path("results/features/train"), "epoch_1.h5"))
    assert not flow.path("results/features/train/epoch_1.h5").exists()
    first = stores_made(flow)
    # kill -9 the head training once it has started
    output = run_and_kill(flow, config, head, job_after(flow.path("results/logs/train/cached/k2_r0.log"),
                                                        "", "train_head.py"))
    epochs = {f"train/epoch_{e}.h5" for e in range(config["cache"]["k"])}
    assert output.count("rule extract_epoch:") == len(epochs - set(first))  # only what was missing
    assert not flow.path(head).exists()
    done = stores_made(flow)
    assert {name: done[name] for name in first} == first  # stores made before are kept as they were
    # rerun: only the training runs again, and everything equals the uninterrupted run
    result = flow.run(config, head)
    output = result.stdout + result.stderr
    assert "rule extract_epoch:" not in output and "rule train_cached:" in output
    assert stores_made(flow) == done
    for epoch in range(config["cache"]["k"]):
        assert_same_store_data(flow.path(f"results/features/train/epoch_{epoch}.h5"),
                               reference.path(f"results/features/train/epoch_{epoch}.h5"))
    assert head_weights(flow.path(head)) == head_weights(reference.path(head))
    leftovers = [p for p in flow.path("results").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [], leftovers
    assert not any(name.startswith(".") for name in os.listdir(flow.path("results/features/train")))
