"""Peak memory and speed of head training on pooled caches, streamed under a small budget or in memory.

Two caches of pooled features (default 1280 float16 values per sample, as MobileNetV2 with average
pooling gives) are written: K epochs of a small and of a ten times larger training set (default
10 x 2 000 = 20 000 and 10 x 20 000 = 200 000 sample-epochs). Each training run is its own process,
so its peak RSS (``ru_maxrss``) is its own: K head epochs (one pass over the cache) with

- stream: ``StreamedEpochs`` and a validation ``StoreBlocks``, blocks sized to --budget MiB;
- memory: ``CachedEpochs`` and the validation store in memory.

Targets: stream peak RSS large / small <= 1.2 (memory does not grow with the cache); stream
samples/s >= in-memory samples/s / 1.5 on the small cache.

    ./run bench stream_memory.py [--small 2000] [--scale 10] [--k 10] [--dim 1280] [--budget 64]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

CLASSES = 10
PROVENANCE = {"split": "train", "weights_sha256": "bench", "augmentation": "bench"}


def write_cache(folder: Path, n: int, k: int, dim: int, n_val: int) -> None:
    """K epoch stores of n rows and one validation store, with their manifests."""
    from augcache.core.provenance import sha256_file
    from augcache.store.features import FeatureWriter

    rng = np.random.default_rng(n)
    folder.mkdir(parents=True)
    centres = rng.normal(size=(CLASSES, dim)).astype(np.float32)
    block = 4096

    def write(path, rows, attrs):
        with FeatureWriter(path, rows, (dim,), "float16", attrs) as writer:
            for start in range(0, rows, block):
                m = min(block, rows - start)
                y = rng.integers(0, CLASSES, m)
                x = centres[y] + rng.normal(scale=2.0, size=(m, dim)).astype(np.float32)
                writer.write(x, y, [f"s{start + i}" for i in range(m)])

    for e in range(k):
        manifest = folder / f"epoch_{e}.csv"
        manifest.write_text(f"bench manifest {n} {e}\n")
        write(folder / f"epoch_{e}.h5", n, dict(PROVENANCE, epoch=e, manifest_sha256=sha256_file(manifest)))
    write(folder / "val.h5", n_val, dict(PROVENANCE, split="val", epoch=-1, manifest_sha256=""))


def child(args) -> None:
    """One training run; prints a JSON line with its peak RSS and samples/s."""
    from augcache.core.backend import configure_tensorflow
    from augcache.training.head import HeadConfig
    from augcache.store.stream import StoreBlocks, block_rows
    from augcache.training.train import CachedEpochs, StreamedEpochs, train_head
    from augcache.store.features import load_store

    configure_tensorflow(0)
    folder = Path(args.cache)
    stores = [folder / f"epoch_{e}.h5" for e in range(args.k)]
    manifests = [folder / f"epoch_{e}.csv" for e in range(args.k)]
    cfg = HeadConfig(hidden_units=(128,), epochs=args.k, batch_size=args.batch)
    if args.mode == "stream":
        rows = block_rows(args.dim * 4, cfg.batch_size, (args.budget << 20) // 2)
        source = StreamedEpochs(stores, manifests, {}, rows)
        val = StoreBlocks(folder / "val.h5", rows)
    else:
        source = CachedEpochs(stores, manifests, {})
        val_x, val_y, _ = load_store(folder / "val.h5", {})
        val = (val_x, val_y)
    n = args.n
    start = time.perf_counter()
    _, metrics, _ = train_head(source, n, (args.dim,), CLASSES, val, cfg, seed=0)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak_rss": peak, "samples_per_s": n * args.k / seconds,
                      "final_val_accuracy": float(metrics["val_accuracy"].iloc[-1])}))


def measure(cache: Path, n: int, mode: str, args) -> dict:
    command = [sys.executable, __file__, "--child", "--cache", str(cache), "--n", str(n), "--mode", mode,
               "--k", str(args.k), "--dim", str(args.dim), "--budget", str(args.budget),
               "--batch", str(args.batch)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} on {n}: {result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=2000, help="training samples of the small cache")
    parser.add_argument("--scale", type=int, default=10, help="the large cache has scale x as many")
    parser.add_argument("--k", type=int, default=10, help="cached epochs (and head epochs)")
    parser.add_argument("--dim", type=int, default=1280, help="pooled feature size")
    parser.add_argument("--val", type=int, default=1000, help="validation samples")
    parser.add_argument("--budget", type=int, default=64, help="memory budget of streaming, MiB")
    parser.add_argument("--batch", type=int, default=64, help="head batch size")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    sizes = {"small": args.small, "large": args.small * args.scale}
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, n in sizes.items():
            cache = Path(tmp) / name
            start = time.perf_counter()
            write_cache(cache, n, args.k, args.dim, args.val)
            gib = sum(p.stat().st_size for p in cache.glob("*.h5")) / 2**30
            print(f"{name}: {n * args.k} sample-epochs, {gib:.2f} GiB of stores "
                  f"(written in {time.perf_counter() - start:.0f} s)", flush=True)
            for mode in ("stream", "memory"):
                results[name, mode] = r = measure(cache, n, mode, args)
                print(f"  {mode:6s}: peak RSS {r['peak_rss'] / 2**20:7.0f} MiB, "
                      f"{r['samples_per_s']:8.0f} samples/s, val accuracy {r['final_val_accuracy']:.3f}",
                      flush=True)

    rss_ratio = results["large", "stream"]["peak_rss"] / results["small", "stream"]["peak_rss"]
    speed_ratio = results["small", "memory"]["samples_per_s"] / results["small", "stream"]["samples_per_s"]
    memory_ratio = results["large", "memory"]["peak_rss"] / results["small", "memory"]["peak_rss"]
    print(f"streaming, budget {args.budget} MiB: peak RSS large/small = {rss_ratio:.2f} (target <= 1.2); "
          f"in memory it is {memory_ratio:.2f}")
    print(f"small cache: in-memory / streaming samples/s = {speed_ratio:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
