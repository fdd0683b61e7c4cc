"""How fast the pixel store feeds an extraction: rows in an epoch's shuffled order against the
ceiling of reading the same store in consecutive slices.

A pixel store of --n synthetic images of --size pixels is written as the workflow writes it (one
image a chunk, fletcher32 checksums). Then, side by side and --rounds times each, batches of --batch
rows are read:

- feed: ``PixelStore.batches`` in a shuffled order (what every epoch's extraction reads);
- ceiling: the same number of rows in storage order, one slice read a batch;
- per-row slicing: the shuffled order read with h5py's ``read_direct`` one row at a time (the
  plain way, for comparison).

It prints one JSON line: images/s of each (the best round) and feed / ceiling (target >= 0.8).
The store is read from the page cache (it was just written): this measures the reader, not the disk.

    ./run bench pixel_feed.py [--n 3000] [--size 224] [--batch 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np


def write_store(path: Path, n: int, size: int) -> None:
    from augcache.data.pixels import PixelWriter

    rng = np.random.default_rng(0)
    with PixelWriter(path, n, (size, size), {"resize": "stretch"}) as writer:
        for start in range(0, n, 100):
            m = min(100, n - start)
            writer.write(rng.integers(0, 256, (m, size, size, 3), dtype=np.uint8),
                         [f"img{start + i:06d}" for i in range(m)])
        writer.attrs_at_close["index_sha256"] = "bench"


def feed(store, order, batch):
    return sum(len(b) for b in store.batches(order, batch))


def ceiling(path, n, batch):
    with h5py.File(path, "r") as handle:
        pixels = handle["pixels"]
        read = 0
        for start in range(0, n, batch):
            out = np.empty((min(batch, n - start), *pixels.shape[1:]), np.uint8)
            pixels.read_direct(out, np.s_[start:start + len(out)], np.s_[0:len(out)])
            read += len(out)
    return read


def per_row_slicing(path, order, batch):
    with h5py.File(path, "r") as handle:
        pixels = handle["pixels"]
        read = 0
        for start in range(0, len(order), batch):
            part = order[start:start + batch]
            out = np.empty((len(part), *pixels.shape[1:]), np.uint8)
            for j, row in enumerate(part):
                pixels.read_direct(out, np.s_[row], np.s_[j])
            read += len(out)
    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from augcache.data.pixels import PixelStore

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pixels.h5"
        write_store(path, args.n, args.size)
        store = PixelStore(path)
        order = np.random.default_rng(1).permutation(args.n)
        # the feed's rows, checked once against the store read whole
        with h5py.File(path, "r") as handle:
            whole = handle["pixels"][:]
        assert np.array_equal(np.concatenate(list(store.batches(order[:300], args.batch))), whole[order[:300]])
        del whole
        runs = {"feed": lambda: feed(store, order, args.batch), "ceiling": lambda: ceiling(path, args.n, args.batch),
                "per_row_slicing": lambda: per_row_slicing(path, order, args.batch)}
        best = {name: 0.0 for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                assert run() == args.n
                best[name] = max(best[name], args.n / (time.perf_counter() - start))
    print(json.dumps({
        "images": args.n, "size": args.size, "batch": args.batch,
        **{f"{name}_images_per_s": round(v) for name, v in best.items()},
        "feed_over_ceiling": round(best["feed"] / best["ceiling"], 3),
        "per_row_slicing_over_ceiling": round(best["per_row_slicing"] / best["ceiling"], 3),
    }))


if __name__ == "__main__":
    main()
