"""Shared set-up of the head benchmarks: demo-shaped JPEGs, their index, and K cached epochs plus the
validation store, made by the workflow's own functions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class DemoCache:
    root: Path
    index: object
    train_rows: object
    stores: list
    manifests: list
    val: tuple
    spec: object
    aug: object
    settings: object
    extraction_seconds: float

    @property
    def n_train(self) -> int:
        return len(self.train_rows)

    @property
    def feature_shape(self) -> tuple:
        return self.val[0].shape[1:]


def cache_arguments(parser):
    """The options of the demo cache: images, size, conv base, K."""
    parser.add_argument("--images", type=int, default=200, help="training images")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--arch", default="VGG16")
    parser.add_argument("--k", type=int, default=2, help="cached epochs")
    return parser


def demo_cache(root: Path, images: int, size: int, arch: str, k: int) -> DemoCache:
    """Write `images` training (and images // 4 validation) JPEGs of the demo shapes at size px under
    root, and cache K augmented epochs of arch's features (random weights: no download)."""
    import tensorflow as tf

    from augcache.jobs.extraction import extract_epoch, extract_unaugmented
    from augcache.base.conv_base import BaseSpec
    from augcache.data.dataset import index_folder, write_index
    from augcache.data.demo import DEMO_CLASSES, TRAIN_SPREAD, VAL_SPREAD, render
    from augcache.augmentation.manifest import AugmentConfig, build_manifest, write_manifest
    from augcache.data.pixels import open_pixels
    from augcache.base.store_fields import CacheConfig
    from augcache.base.store_fields import config_provenance
    from augcache.store.features import load_store

    spec = BaseSpec(arch, (size, size))
    aug = AugmentConfig.from_config({"rotation_range": 20, "width_shift_range": 0.1,
                                     "height_shift_range": 0.1, "horizontal_flip": True})
    settings = CacheConfig(dtype="float16", batch_size=32)
    rng = np.random.default_rng(0)
    val_count = max(len(DEMO_CLASSES), images // 4)
    for split, count, spread in (("train", images, TRAIN_SPREAD), ("val", val_count, VAL_SPREAD)):
        for i in range(count):
            name = DEMO_CLASSES[i % len(DEMO_CLASSES)]
            path = root / "data" / split / name / f"{i:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tf.io.encode_jpeg(render(name, size, rng, spread)).numpy())
    index = index_folder(root / "data", 0.2, 0)
    write_index(index, root / "index.csv")
    train_rows = index[index["split"] == "train"]
    pixels = open_pixels(spec.image_size, spec.resize)

    start = time.perf_counter()
    extract_unaugmented(index, "val", root / "val.h5", spec, settings, pixels)
    stores, manifests = [], []
    for e in range(k):
        manifest = root / f"epoch_{e}.csv"
        write_manifest(build_manifest(train_rows, aug, 0, e, spec.image_size), manifest)
        extract_epoch(manifest, root / f"epoch_{e}.h5", e, spec, aug, settings, pixels)
        stores.append(root / f"epoch_{e}.h5")
        manifests.append(manifest)
    extraction = time.perf_counter() - start
    val_x, val_y, _ = load_store(root / "val.h5", dict(config_provenance(spec, None, settings), split="val"))
    return DemoCache(root, index, train_rows, stores, manifests, (val_x, val_y), spec, aug, settings, extraction)


def cached_source(cache: DemoCache):
    from augcache.base.store_fields import config_provenance
    from augcache.training.train import CachedEpochs

    return CachedEpochs(cache.stores, cache.manifests,
                        dict(config_provenance(cache.spec, cache.aug, cache.settings), split="train"))


def onthefly_source(cache: DemoCache, seed: int = 0):
    from augcache.base.conv_base import build_base, feature_function
    from augcache.data.pixels import open_pixels
    from augcache.training.train import ConvOnTheFly, fresh_manifests

    size = cache.spec.image_size
    model, preprocess = build_base(cache.spec)
    return ConvOnTheFly(fresh_manifests(cache.train_rows, cache.aug, seed, size), open_pixels(size, cache.spec.resize),
                        feature_function(model, preprocess, size), size, cache.settings.batch_size,
                        cache.aug.resampling, "float32")
