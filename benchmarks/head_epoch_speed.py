"""Seconds per head epoch: from the cache, plain in-memory fit, and on the fly, side by side.

For the same images, conv base (default VGG16 at 224 px, conv map features) and head:

- cached: the workflow's training loop reading K cached epochs (``train_head`` + ``CachedEpochs``);
- in-memory: a plain ``model.fit`` on the same feature arrays, already in memory;
- on the fly: the workflow's training loop with the conv base run on freshly augmented images
  every epoch (``ConvOnTheFly``).

Targets: cached <= 1.3 x in-memory; on-the-fly / cached >= 20.

    ./run bench head_epoch_speed.py [--images 200] [--size 224] [--arch VGG16] [--epochs 8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="training images")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--arch", default="VGG16")
    parser.add_argument("--k", type=int, default=2, help="cached epochs")
    parser.add_argument("--epochs", type=int, default=8, help="head epochs (cached and in-memory)")
    parser.add_argument("--onthefly-epochs", type=int, default=2)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from augcache.params import Resampling
    from augcache.cache import CacheSettings, config_provenance, configure_tensorflow, extract_epoch, \
        extract_unaugmented
    from augcache.conv_base import BaseSpec, build_base, feature_function
    from augcache.dataset import index_folder
    from augcache.demo import DEMO_CLASSES, TRAIN_SPREAD, VAL_SPREAD, render
    from augcache.head import HeadConfig, build_head
    from augcache.manifest import AugmentConfig, build_manifest, write_manifest
    from augcache.train import CachedEpochs, ConvOnTheFly, fresh_manifests, load_store, train_head

    configure_tensorflow(0)
    size = (args.size, args.size)
    spec = BaseSpec(args.arch, size)
    aug = AugmentConfig.from_config({"rotation_range": 20, "width_shift_range": 0.1,
                                     "height_shift_range": 0.1, "horizontal_flip": True})
    settings = CacheSettings(dtype="float16", batch_size=32)
    head_cfg = HeadConfig(hidden_units=(64,), epochs=args.epochs, batch_size=32)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        val_count = max(len(DEMO_CLASSES), args.images // 4)
        for split, count, spread in (("train", args.images, TRAIN_SPREAD), ("val", val_count, VAL_SPREAD)):
            for i in range(count):
                name = DEMO_CLASSES[i % len(DEMO_CLASSES)]
                path = root / "data" / split / name / f"{i:05d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(tf.io.encode_jpeg(render(name, args.size, rng, spread)).numpy())
        index = index_folder(root / "data", 0.2, 0)
        train_rows = index[index["split"] == "train"]
        n = len(train_rows)

        start = time.perf_counter()
        extract_unaugmented(index, "val", root / "val.h5", spec, settings)
        stores, manifests = [], []
        for e in range(args.k):
            manifest = root / f"epoch_{e}.csv"
            write_manifest(build_manifest(train_rows, aug, 0, e), manifest)
            extract_epoch(manifest, root / f"epoch_{e}.h5", e, spec, aug, settings)
            stores.append(root / f"epoch_{e}.h5")
            manifests.append(manifest)
        extraction = time.perf_counter() - start

        expected = config_provenance(spec, None, settings)
        val_x, val_y, _ = load_store(root / "val.h5", dict(expected, split="val"))
        cached_source = CachedEpochs(stores, manifests,
                                     dict(config_provenance(spec, aug, settings), split="train"))
        shape = val_x.shape[1:]

        _, cached, _ = train_head(cached_source, n, shape, len(DEMO_CLASSES), (val_x, val_y), head_cfg, 0)

        [(x, y)], _ = cached_source(0)
        plain = build_head(shape, len(DEMO_CLASSES), head_cfg, 0)
        epoch_seconds = []

        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                epoch_seconds.append(time.perf_counter() - self.start)

        plain.fit(x, y, batch_size=head_cfg.batch_size, epochs=args.epochs, shuffle=False,
                  validation_data=(val_x, val_y), validation_batch_size=256, callbacks=[Clock()], verbose=0)

        model, preprocess = build_base(spec)
        onthefly_source = ConvOnTheFly(fresh_manifests(train_rows, aug, 0),
                                       feature_function(model, preprocess, size), size,
                                       settings.batch_size, Resampling(), "float32")
        fly_cfg = HeadConfig(hidden_units=(64,), epochs=args.onthefly_epochs, batch_size=32)
        _, onthefly, _ = train_head(onthefly_source, n, shape, len(DEMO_CLASSES), (val_x, val_y), fly_cfg, 0)

    # the first epoch of each run includes tracing; compare the steady-state epochs
    cached_s = float(np.median(cached["seconds"].iloc[1:]))
    plain_s = float(np.median(epoch_seconds[1:]))
    fly_s = float(np.median(onthefly["seconds"]))
    print(f"{args.arch} at {args.size} px, {n} training images, features {shape}, K={args.k}, "
          f"{os.cpu_count()} CPUs (extraction of val + {args.k} epochs: {extraction:.1f} s)")
    print(f"cached head epoch          : {cached_s:8.3f} s (median of epochs 2..{args.epochs})")
    print(f"in-memory fit epoch        : {plain_s:8.3f} s (median of epochs 2..{args.epochs})")
    print(f"on-the-fly epoch           : {fly_s:8.3f} s (median of {args.onthefly_epochs})")
    print(f"cached / in-memory   = {cached_s / plain_s:.2f}   (target <= 1.3)")
    print(f"on-the-fly / cached  = {fly_s / cached_s:.1f}   (target >= 20)")


if __name__ == "__main__":
    main()
