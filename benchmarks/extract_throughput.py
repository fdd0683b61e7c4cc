"""Extraction throughput, measured side by side on the same images, base and batch size.

(a) bare ``model.predict`` on images already decoded, resized and preprocessed in memory;
(b) extraction decoding every file again (``data.pixel_store: false``), HDF5 writing included;
(c) extraction reading the pixel store (the default), HDF5 writing included;
and the one-time cost of filling the pixel store, per image: the decode with JPEG DCT scaling
that the index step runs, against a full-size decode followed by the same resize.

c/a is the figure to push toward 1: with the pixel store, extraction should run at the speed of
the conv base (target >= 0.85 on camera-sized JPEGs). ``--photo-size 4032x3024`` writes JPEGs the
size a phone camera makes; without it the JPEGs are synthetic shapes a quarter larger than the
model input.

    ./run bench extract_throughput.py [--images 384] [--size 224] [--batch 32] [--arch MobileNetV2]
                                      [--photo-size 4032x3024]
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

    from augcache.demo import DEMO_CLASSES, VAL_SPREAD, render

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
    args = parser.parse_args()

    import pandas as pd

    from augcache.cache import configure_tensorflow
    from augcache.conv_base import BaseSpec, build_base, feature_function
    from augcache.extract import decode_workers, extract_to_store
    from augcache.images import decode_file, load_pixels, resize_pixels
    from augcache.manifest import AugmentConfig, build_manifest
    from augcache.pixels import PixelStore, Pixels, PixelWriter

    configure_tensorflow(0)
    size = (args.size, args.size)
    aug = AugmentConfig.from_config({"rotation_range": 20, "width_shift_range": 0.1,
                                     "height_shift_range": 0.1, "zoom_range": 0.1,
                                     "horizontal_flip": True})
    spec = BaseSpec(args.arch, size, pooling="avg")
    model, preprocess = build_base(spec)
    feature_fn = feature_function(model, preprocess, size)
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

        def extraction(pixels):
            return lambda: extract_to_store(folder / "bench.h5", table, pixels, feature_fn, size, args.batch,
                                            "float16", {"benchmark": True}, aug.resampling)

        extraction(stored)()
        a = n / best_of(args.repeats, bare_predict)
        b = n / best_of(args.repeats, extraction(decoded))
        c = n / best_of(args.repeats, extraction(stored))

    print(f"{args.arch} at {args.size} px, {n} {kind}, batch {args.batch}, "
          f"{len(os.sched_getaffinity(0))} CPUs, best of {args.repeats}")
    print(f"(a) bare model.predict, preprocessed in memory     : {a:8.1f} img/s")
    print(f"(b) extraction decoding every file each epoch      : {b:8.1f} img/s   b/a = {b / a:.3f}")
    print(f"(c) extraction reading the pixel store             : {c:8.1f} img/s   c/a = {c / a:.3f}"
          "   (target >= 0.85)")
    print(f"one-time pixel store fill, {workers} threads, per image: {1000 * store_seconds:7.1f} ms "
          f"(DCT-scaled decode + resize + write)")
    print(f"full-size decode + resize, {workers} threads, per image: {1000 * full_seconds:7.1f} ms   "
          f"full / scaled = {full_seconds / store_seconds:.2f}   (target >= 2.5 on photos)")


if __name__ == "__main__":
    main()
