"""Extraction throughput, measured side by side on the same images, base and batch size.

(a) bare ``model.predict`` on images already decoded, resized and preprocessed in memory;
(b) extraction decoding every file again (``data.pixel_store: false``), HDF5 writing included;
(c) extraction reading the pixel store (the default), HDF5 writing included;
(d) the same as (c) with the base computing in mixed_bfloat16 (``cache.compute_dtype``);
and the one-time cost of filling the pixel store, per image: the decode with JPEG DCT scaling
that the index step runs, against a full-size decode followed by the same resize.

c/a is the figure to push toward 1: with the pixel store, extraction should run at the speed of
the conv base (target >= 0.85 on camera-sized JPEGs). ``--photo-size 4032x3024`` writes JPEGs the
size a phone camera makes; without it the JPEGs are synthetic shapes a quarter larger than the
model input.

    ./run bench extract_throughput.py [--images 384] [--size 224] [--batch 32] [--arch MobileNetV2]
                                      [--photo-size 4032x3024] [--gpus 2]

With ``--gpus N`` it also runs the extraction as 1 and as N concurrent jobs, each taking a device
slot (fake ones, AUGCACHE_GPUS, on a machine without GPUs) as workflow jobs do, and prints the
total throughput of each: on N real GPUs the scaling figure, on a CPU machine the slot overhead.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def write_shape_jpegs(folder: Path, count: int, size: int) -> list[str]:
    import tensorflow as tf

    from augcache.data.demo import DEMO_CLASSES, VAL_SPREAD, render

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        # stored larger than the model input, as photos are, so resizing does real work
        image = render(DEMO_CLASSES[i % len(DEMO_CLASSES)], size + size // 4, rng, VAL_SPREAD)
        path = folder / f"img_{i:05d}.jpg"
        path.write_bytes(tf.io.encode_jpeg(image, quality=90).numpy())
        paths.append(str(path))
    return paths


def write_photo_jpegs(folder: Path, count: int, width: int, height: int, distinct: int = 8) -> list[str]:
    """Camera-sized JPEGs: smooth gradients, edges and sensor-like noise, at quality 90 (a few
    MB each, as phones write them). `distinct` images are made and copied to `count` files."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    originals = []
    for i in range(min(count, distinct)):
        fx, fy = rng.uniform(30, 300, 2)
        image = np.stack([np.sin(x / fx + i) * 90 + 128, np.cos(y / fy - i) * 90 + 128,
                          ((x * (i + 1) + y) / 16) % 256], axis=-1)
        image[(x - width / 2) ** 2 + (y - height / 2) ** 2 < (height / (3 + i % 3)) ** 2] *= 0.5
        image += rng.normal(0, 4, image.shape).astype(np.float32)
        path = folder / f"photo_{i:05d}.jpg"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=90)
        originals.append(path)
    paths = []
    for i in range(count):
        path = folder / f"img_{i:05d}.jpg"
        path.write_bytes(originals[i % len(originals)].read_bytes())
        paths.append(str(path))
    return paths


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--arch", default="MobileNetV2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--photo-size", help="WIDTHxHEIGHT of camera-sized JPEGs, e.g. 4032x3024")
    parser.add_argument("--gpus", type=int, default=0, help="also compare 1 and N concurrent slot jobs")
    parser.add_argument("--slot-job", nargs=2, help=argparse.SUPPRESS)  # store, count: one concurrent job
    args = parser.parse_args()
    if args.slot_job:
        slot_job(args, *args.slot_job)
        return

    import pandas as pd

    from augcache.core.backend import configure_tensorflow
    from augcache.base.conv_base import BaseSpec, build_base, feature_function
    from augcache.base.extract import decode_workers, extract_to_store
    from augcache.data.images import decode_file, load_pixels, resize_pixels
    from augcache.augmentation.manifest import AugmentConfig, build_manifest
    from augcache.data.pixels import Pixels, PixelStore, PixelWriter

    configure_tensorflow(0)
    size = (args.size, args.size)
    aug = AugmentConfig.from_config({"rotation_range": 20, "width_shift_range": 0.1,
                                     "height_shift_range": 0.1, "zoom_range": 0.1,
                                     "horizontal_flip": True})
    spec = BaseSpec(args.arch, size, pooling="avg")
    model, preprocess = build_base(spec)
    feature_fn = feature_function(model, preprocess, size)
    bf16_model, _ = build_base(BaseSpec(args.arch, size, pooling="avg", compute_dtype="mixed_bfloat16"))
    bf16_fn = feature_function(bf16_model, preprocess, size)
    workers = decode_workers()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.photo_size:
            width, height = (int(v) for v in args.photo_size.lower().split("x"))
            paths = write_photo_jpegs(folder, args.images, width, height)
            kind = f"{width}x{height} photo JPEGs ({os.path.getsize(paths[0]) / 1e6:.1f} MB each)"
        else:
            paths = write_shape_jpegs(folder, args.images, args.size)
            kind = f"{args.size + args.size // 4} px synthetic JPEGs"
        n = len(paths)
        samples = pd.DataFrame({"sample_id": [Path(p).name for p in paths], "path": paths,
                                "label": "x", "label_index": 0})
        table = build_manifest(samples, aug, seed=0, epoch=0)

        def fill_store():
            with ThreadPoolExecutor(workers) as pool, \
                    PixelWriter(folder / "pixels.h5", n, size, {"resize": "stretch"}) as writer:
                for start in range(0, n, 64):
                    part = samples.iloc[start:start + 64]
                    images = list(pool.map(lambda p: load_pixels(p, size), part["path"]))
                    writer.write(np.stack(images), part["sample_id"].tolist())

        def full_decodes():
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda p: resize_pixels(decode_file(p), size), paths[: min(n, 64)]))

        store_seconds = best_of(1, fill_store) / n
        full_seconds = best_of(1, full_decodes) / min(n, 64)
        stored = Pixels(size, "stretch", PixelStore(folder / "pixels.h5"))
        decoded = Pixels(size, "stretch")

        ready = np.asarray(preprocess(np.concatenate(list(stored.store.batches(np.arange(n), 256)))
                                      .astype(np.float32)))
        model.predict(ready[: args.batch], batch_size=args.batch, verbose=0)  # build and trace

        def bare_predict():
            model.predict(ready, batch_size=args.batch, verbose=0)

        def extraction(pixels, fn=feature_fn):
            return lambda: extract_to_store(folder / "bench.h5", table, pixels, fn, size, args.batch,
                                            "float16", {"benchmark": True}, aug.resampling)

        extraction(stored)()
        extraction(stored, bf16_fn)()
        a = n / best_of(args.repeats, bare_predict)
        b = n / best_of(args.repeats, extraction(decoded))
        c = n / best_of(args.repeats, extraction(stored))
        d = n / best_of(args.repeats, extraction(stored, bf16_fn))
        scaling = slot_scaling(args, folder / "pixels.h5", n) if args.gpus else None

    print(f"{args.arch} at {args.size} px, {n} {kind}, batch {args.batch}, "
          f"{len(os.sched_getaffinity(0))} CPUs, best of {args.repeats}")
    print(f"(a) bare model.predict, preprocessed in memory     : {a:8.1f} img/s")
    print(f"(b) extraction decoding every file each epoch      : {b:8.1f} img/s   b/a = {b / a:.3f}")
    print(f"(c) extraction reading the pixel store             : {c:8.1f} img/s   c/a = {c / a:.3f}"
          "   (target >= 0.85)")
    print(f"(d) as (c), base in mixed_bfloat16                 : {d:8.1f} img/s   d/c = {d / c:.3f}")
    print(f"one-time pixel store fill, {workers} threads, per image: {1000 * store_seconds:7.1f} ms "
          f"(DCT-scaled decode + resize + write)")
    print(f"full-size decode + resize, {workers} threads, per image: {1000 * full_seconds:7.1f} ms   "
          f"full / scaled = {full_seconds / store_seconds:.2f}   (target >= 2.5 on photos)")
    if scaling:
        one, many = scaling
        print(f"1 slot job: {one:.1f} img/s; {args.gpus} concurrent slot jobs: {many:.1f} img/s in total   "
              f"ratio {many / one:.2f}")


def slot_job(args, store: str, count: str) -> None:
    """One extraction job as the workflow runs it: take a device slot, then extract."""
    import pandas as pd

    from augcache.jobs.devices import assign_device

    assign_device(True)
    from augcache.core.backend import configure_tensorflow
    from augcache.base.conv_base import BaseSpec, build_base, feature_function
    from augcache.base.extract import extract_to_store
    from augcache.augmentation.manifest import AugmentConfig, build_manifest
    from augcache.data.pixels import Pixels, PixelStore

    configure_tensorflow(0)
    size = (args.size, args.size)
    pixels = Pixels(size, "stretch", PixelStore(store))
    ids = list(pixels.store._row)[: int(count)]
    samples = pd.DataFrame({"sample_id": ids, "path": ids, "label": "x", "label_index": 0})
    table = build_manifest(samples, AugmentConfig(rotation_range=20.0), seed=0, epoch=0)
    model, preprocess = build_base(BaseSpec(args.arch, size, pooling="avg"))
    out = Path(store).with_name(f"slot_{os.getpid()}.h5")
    extract_to_store(out, table, pixels, feature_function(model, preprocess, size), size, args.batch,
                     "float16", {"benchmark": True})


def slot_scaling(args, store: Path, n: int) -> tuple[float, float]:
    """Total img/s of 1 job and of args.gpus concurrent jobs, each on its own device slot."""
    import subprocess
    import sys

    env = dict(os.environ, AUGCACHE_GPUS=",".join(str(i) for i in range(args.gpus)),
               AUGCACHE_GPU_LOCKS=str(store.parent / "locks"))
    command = [sys.executable, __file__, "--size", str(args.size), "--batch", str(args.batch),
               "--arch", args.arch, "--slot-job", str(store), str(n)]
    rates = []
    for jobs in (1, args.gpus):
        start = time.perf_counter()
        running = [subprocess.Popen(command, env=env) for _ in range(jobs)]
        if any(job.wait() for job in running):
            raise RuntimeError("a slot job failed")
        rates.append(jobs * n / (time.perf_counter() - start))
    return rates[0], rates[1]


if __name__ == "__main__":
    main()
