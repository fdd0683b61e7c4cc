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
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from demo_cache import cache_arguments  # noqa: E402


def main() -> None:
    parser = cache_arguments(argparse.ArgumentParser(description=__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--epochs", type=int, default=8, help="head epochs (cached and in-memory)")
    parser.add_argument("--onthefly-epochs", type=int, default=2)
    args = parser.parse_args()

    import keras
    from demo_cache import cached_source, demo_cache, onthefly_source

    from augcache.core.backend import configure_tensorflow
    from augcache.data.demo import DEMO_CLASSES
    from augcache.training.head import HeadConfig, build_head
    from augcache.training.train import train_head

    configure_tensorflow(0)
    head_cfg = HeadConfig(hidden_units=(64,), epochs=args.epochs, batch_size=32)
    with tempfile.TemporaryDirectory() as tmp:
        cache = demo_cache(Path(tmp), args.images, args.size, args.arch, args.k)
        n, shape, (val_x, val_y) = cache.n_train, cache.feature_shape, cache.val
        extraction = cache.extraction_seconds
        source = cached_source(cache)
        _, cached, _ = train_head(source, n, shape, len(DEMO_CLASSES), (val_x, val_y), head_cfg, 0)

        [(x, y)], _ = source(0)
        plain = build_head(shape, len(DEMO_CLASSES), head_cfg, 0)
        epoch_seconds = []

        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                epoch_seconds.append(time.perf_counter() - self.start)

        plain.fit(x, y, batch_size=head_cfg.batch_size, epochs=args.epochs, shuffle=False,
                  validation_data=(val_x, val_y), validation_batch_size=256, callbacks=[Clock()], verbose=0)

        fly_cfg = HeadConfig(hidden_units=(64,), epochs=args.onthefly_epochs, batch_size=32)
        _, onthefly, _ = train_head(onthefly_source(cache), n, shape, len(DEMO_CLASSES), (val_x, val_y),
                                    fly_cfg, 0)

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
