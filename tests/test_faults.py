"""Faults and scale: sharded epochs, killed jobs, corrupted or foreign stores, a full disk."""

import h5py
import numpy as np
import pytest

from augcache.cache import shard_rows
from augcache.provenance import ProvenanceError
from augcache.store import FeatureWriter, merge_shards
from conftest import Workflow, full_config


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


def test_sharded_epochs_equal_one_job_per_epoch(full_run, tmp_path, tiny_data, tiny_base):
    config, unsharded = full_run
    flow = Workflow(tmp_path / "project")
    sharded_config = full_config(tiny_data, tiny_base)
    sharded_config["cache"]["shards_per_epoch"] = 3
    result = flow.run(sharded_config, "cache")
    output = result.stdout + result.stderr
    assert output.count("rule extract_shard:") == 3 * config["cache"]["epochs"]
    assert output.count("rule merge_shards:") == config["cache"]["epochs"]
    for epoch in range(config["cache"]["epochs"]):
        logs = sorted(flow.path(f"results/logs/extract/epoch_{epoch}").glob("shard_*.log"))
        assert len(logs) == 3
        assert "rows 16-18" in logs[2].read_text()
        assert_same_store_data(flow.path(f"results/features/train/epoch_{epoch}.h5"),
                               unsharded.path(f"results/features/train/epoch_{epoch}.h5"))
        assert not flow.path(f"results/features/train/epoch_{epoch}").exists()  # shards removed
