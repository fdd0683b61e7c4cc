"""What a head sweep point costs on a cache, against one on-the-fly run of the same head.

Demo-shaped images, a conv base (default VGG16 at 224 px, random weights: same cost as ImageNet's),
K cached epochs made once. Then, side by side in this process:

- a sweep point: one head trained for --epochs head epochs from the cache (``train_head`` +
  ``CachedEpochs``, as a ``train_sweep_point`` job does), timed for --points learning rates;
- one on-the-fly run of the same head: the conv base on freshly augmented images every head epoch
  (``ConvOnTheFly``), timed over --onthefly-epochs epochs and scaled to --epochs (its cost is the
  same every epoch).

Prints sweep points per on-the-fly run (target >= 50), also counting each workflow job's start
(a fresh interpreter importing TensorFlow, measured here) and the one-time extraction of the cache.

    ./run bench sweep_cost.py [--images 200] [--size 224] [--arch VGG16] [--epochs 10] [--points 6]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from demo_cache import cache_arguments  # noqa: E402


def job_start_seconds() -> float:
    """Seconds a fresh interpreter takes to import TensorFlow and Keras (each job pays it)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tensorflow, keras"], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = cache_arguments(argparse.ArgumentParser(description=__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--epochs", type=int, default=10, help="head epochs of a run")
    parser.add_argument("--points", type=int, default=6, help="sweep points timed")
    parser.add_argument("--onthefly-epochs", type=int, default=2, help="on-the-fly epochs timed")
    args = parser.parse_args()

    from demo_cache import cached_source, demo_cache, onthefly_source

    from augcache.core.backend import configure_tensorflow
    from augcache.data.demo import DEMO_CLASSES
    from augcache.training.head import HeadConfig
    from augcache.training.train import train_head

    configure_tensorflow(0)
    rates = np.geomspace(1e-2, 1e-4, args.points)
    with tempfile.TemporaryDirectory() as tmp:
        cache = demo_cache(Path(tmp), args.images, args.size, args.arch, args.k)
        n, shape, val = cache.n_train, cache.feature_shape, cache.val
        point_seconds = []
        for rate in rates:
            cfg = HeadConfig(hidden_units=(64,), epochs=args.epochs, batch_size=32, learning_rate=float(rate))
            start = time.perf_counter()
            train_head(cached_source(cache), n, shape, len(DEMO_CLASSES), val, cfg, 0)
            point_seconds.append(time.perf_counter() - start)
        fly_cfg = HeadConfig(hidden_units=(64,), epochs=args.onthefly_epochs, batch_size=32)
        source = onthefly_source(cache)
        start = time.perf_counter()
        _, fly, _ = train_head(source, n, shape, len(DEMO_CLASSES), val, fly_cfg, 0)
        fly_total = time.perf_counter() - start
    startup = job_start_seconds()

    point = float(np.median(point_seconds))
    fly_epoch = float(np.median(fly["seconds"]))
    fly_run = fly_epoch * args.epochs + (fly_total - float(fly["seconds"].sum()))
    print(f"{args.arch} at {args.size} px, {n} training images, features {shape}, K={args.k}, "
          f"{args.epochs} head epochs, {os.cpu_count()} CPUs")
    print(f"one-time extraction (val + {args.k} epochs): {cache.extraction_seconds:8.1f} s")
    print(f"sweep point (cached), median of {args.points}: {point:8.2f} s "
          f"(all: {', '.join(f'{s:.2f}' for s in point_seconds)})")
    print(f"job start (python + TensorFlow)      : {startup:8.2f} s")
    print(f"on-the-fly epoch                     : {fly_epoch:8.2f} s, run of {args.epochs} epochs {fly_run:.1f} s")
    print(f"sweep points per on-the-fly run      = {fly_run / point:.0f}   (target >= 50)")
    print(f"  with each point's job start        = {fly_run / (point + startup):.0f}")
    print(f"  with the extraction paid by them   = {(fly_run - cache.extraction_seconds) / (point + startup):.0f}")


if __name__ == "__main__":
    main()
