"""Streaming head training: features read from the stores in blocks give the in-memory results."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from augcache.core.memory import memory_budget_bytes
from augcache.store.features import FeatureWriter
from augcache.store.stream import StoreBlocks, block_rows
from augcache.store.writer import StoreError


def write_store(path, n=23, shape=(3,)):
    features = np.arange(n * int(np.prod(shape)), dtype=np.float32).reshape(n, *shape)
    with FeatureWriter(path, n, shape, "float16", {"split": "train"}) as writer:
        writer.write(features, np.arange(n) % 4, [f"s{i}" for i in range(n)])
    return features.astype(np.float16).astype(np.float32)


def test_blocks_come_in_stored_order_as_float32(tmp_path):
    features = write_store(tmp_path / "s.h5")
    blocks = list(StoreBlocks(tmp_path / "s.h5", rows_per_block=5))
    assert [len(y) for _, y in blocks] == [5, 5, 5, 5, 3]
    assert all(x.dtype == np.float32 for x, _ in blocks)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in blocks]), features)
    # a second pass reads the file again, the same way
    np.testing.assert_array_equal(np.concatenate([y for _, y in StoreBlocks(tmp_path / "s.h5", 5)]),
                                  np.arange(23) % 4)


def test_blocks_follow_a_given_order(tmp_path):
    features = write_store(tmp_path / "s.h5")
    order = np.random.default_rng(0).permutation(23)
    blocks = list(StoreBlocks(tmp_path / "s.h5", rows_per_block=4, order=order))
    np.testing.assert_array_equal(np.concatenate([x for x, _ in blocks]), features[order])
    np.testing.assert_array_equal(np.concatenate([y for _, y in blocks]), order % 4)


def test_a_reader_stopped_early_ends_its_thread(tmp_path):
    import threading

    write_store(tmp_path / "s.h5", n=200)
    before = threading.active_count()
    for _ in StoreBlocks(tmp_path / "s.h5", rows_per_block=1, readahead=1):
        break
    assert threading.active_count() == before


def test_a_read_error_names_the_file(tmp_path):
    write_store(tmp_path / "s.h5")
    with h5py.File(tmp_path / "s.h5", "a") as handle:
        del handle["labels"]
    with pytest.raises(StoreError, match=f"{tmp_path / 's.h5'}: reading features failed"):
        list(StoreBlocks(tmp_path / "s.h5", rows_per_block=5))


def test_block_rows_fit_the_budget_in_whole_batches():
    assert block_rows(row_bytes=1000, batch_size=32, budget_bytes=10 << 20) == 2592
    assert block_rows(row_bytes=1000, batch_size=32, budget_bytes=1000) == 32
    assert memory_budget_bytes(3) == 3 << 20
    assert memory_budget_bytes(0.5) == 1 << 19
    assert memory_budget_bytes("auto") > 0
    with pytest.raises(ValueError, match="train.memory_budget_mb"):
        memory_budget_bytes(0)


def test_the_tightest_cgroup_limit_caps_the_available_memory(tmp_path):
    from augcache.core.memory import cgroup_room

    def group(path, limit, used, names=("memory.max", "memory.current")):
        path.mkdir(parents=True, exist_ok=True)
        (path / names[0]).write_text(f"{limit}\n")
        (path / names[1]).write_text(f"{used}\n")

    root = tmp_path / "cgroup"
    group(root / "job_7", 8 << 30, 1 << 30)  # a SLURM job: 8 GiB, 1 GiB used
    group(root / "job_7" / "step_0", "max", 1 << 30)
    proc = tmp_path / "cgroup.txt"
    proc.write_text("0::/job_7/step_0\n")
    assert cgroup_room(proc, root) == 7 << 30
    v1 = ("memory.limit_in_bytes", "memory.usage_in_bytes")
    group(root / "memory" / "box", 2 << 30, 1 << 29, v1)
    proc.write_text("4:memory:/box\n0::/job_7/step_0\n")
    assert cgroup_room(proc, root) == (2 << 30) - (1 << 29)
    proc.write_text("0::/\n")
    assert cgroup_room(proc, root) is None


def run_with_budget(config, flow, tmp_path, mode, run_dir, budget):
    from augcache.base.conv_base import BaseSpec
    from augcache.training.experiment import RunInputs, RunOutputs, TrainingConfig, RunSpec, run_training
    from augcache.training.head import HeadConfig
    from augcache.augmentation.manifest import AugmentConfig
    from augcache.base.store_fields import CacheConfig
    from augcache.training.modes import mode as mode_of

    k = config["cache"]["k"] if mode == "cached" else 0
    out = tmp_path / run_dir
    out.mkdir(parents=True)
    run_training(
        RunSpec(mode=mode, k=k, repeat=0, seed=config["seed"]),
        RunInputs(
            index=flow.path("results/dataset/index.csv"),
            val_store=flow.path("results/features/val.h5"),
            train_stores=tuple(flow.path(store) for store in mode_of(mode).stored.run_inputs(k, 0)["stores"]),
            manifests=tuple(flow.path(f"results/manifest/epoch_{e}.csv") for e in range(k)),
        ),
        TrainingConfig(
            spec=BaseSpec.from_config({**config["conv_base"], "image_size": config["data"]["image_size"],
                                       "seed": config["seed"]}),
            aug=AugmentConfig.from_config(config["augment"]),
            cache=CacheConfig(dtype=config["cache"]["dtype"], batch_size=config["cache"]["batch_size"]),
            head=HeadConfig.from_config(config["head"]),
            memory_budget_mb=budget,
        ),
        RunOutputs(head=out / "head.keras", best_head=out / "best_head.keras", metrics=out / "metrics.csv",
                   summary=out / "summary.json"),
    )
    return pd.read_csv(out / "metrics.csv"), json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("mode, run_dir", [("cached", "cached/k2_r0"), ("noaug", "noaug/r0")])
def test_streamed_training_matches_the_in_memory_run(full_run, tmp_path, mode, run_dir):
    config, flow = full_run
    in_memory = pd.read_csv(flow.path(f"results/train/{run_dir}/metrics.csv"))
    assert json.loads(flow.path(f"results/train/{run_dir}/summary.json").read_text())["features_from"] \
        == "memory"
    streamed, summary = run_with_budget(config, flow, tmp_path, mode, run_dir, budget=0.01)
    assert summary["features_from"] == "stream"
    assert len(streamed) == config["head"]["epochs"]
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(streamed[column], in_memory[column], rtol=1e-5, atol=1e-6)


def test_blocks_smaller_than_an_epoch_feed_the_same_batches(full_run):
    config, flow = full_run
    from augcache.training.train import CachedEpochs, EpochStream, StreamedEpochs

    stores = [flow.path(f"results/features/train/epoch_{e}.h5") for e in range(2)]
    manifests = [flow.path(f"results/manifest/epoch_{e}.csv") for e in range(2)]
    n = 18
    batch = config["head"]["batch_size"]
    memory = list(EpochStream(CachedEpochs(stores, manifests, {}), n, batch, 3))
    # 7 rows per block: not a multiple of the batch size, so batches span blocks
    streamed = list(EpochStream(StreamedEpochs(stores, manifests, {}, rows_per_block=7), n, batch, 3))
    assert len(memory) == len(streamed) == 3 * 4
    for (xm, ym), (xs, ys) in zip(memory, streamed):
        np.testing.assert_array_equal(xs, xm)
        np.testing.assert_array_equal(ys, ym)
