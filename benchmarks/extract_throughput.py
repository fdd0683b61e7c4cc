"""Extraction throughput, measured side by side on the same images, base and batch size.

(a) bare ``model.predict`` on images already decoded, resized and preprocessed in memory;
(b) decoding + resizing + augmenting alone (the extraction input pipeline, no conv base);
(c) the workflow's extraction code, HDF5 writing included.

When decoding and the conv share the CPU cores, the bound for (c) is running (a) and (b) back to back,
1 / (1/a + 1/b); the target is c >= 0.9 of it. On a GPU, where decoding overlaps the conv, c/a is the
figure to push toward 1.

    ./run bench extract_throughput.py [--images 384] [--size 224] [--batch 32] [--arch MobileNetV2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def write_jpegs(folder: Path, count: int, size: int) -> list[str]:
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
    args = parser.parse_args()

    import tensorflow as tf

    from augcache.augment import Resampling
    from augcache.cache import configure_tensorflow
    from augcache.conv_base import BaseSpec, build_base, feature_function
    from augcache.extract import augmented_batches, extract_to_store
    from augcache.images import load_images
    from augcache.manifest import AugmentConfig, draw_params

    configure_tensorflow(0)
    size = (args.size, args.size)
    aug = AugmentConfig.from_config({"rotation_range": 20, "width_shift_range": 0.1,
                                     "height_shift_range": 0.1, "zoom_range": 0.1,
                                     "horizontal_flip": True})
    resampling = Resampling(aug.fill_mode, aug.cval, aug.interpolation)
    spec = BaseSpec(args.arch, size, pooling="avg")
    model, preprocess = build_base(spec)
    feature_fn = feature_function(model, preprocess, size)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_jpegs(folder, args.images, args.size)
        n = len(paths)
        _, params = draw_params(aug, n, seed=0, epoch=0)
        labels = np.zeros(n, np.int64)
        ids = [Path(p).name for p in paths]

        ready = preprocess(load_images(paths, size)).numpy()
        model.predict(ready[: args.batch], batch_size=args.batch, verbose=0)  # build and trace

        def bare_predict():
            model.predict(ready, batch_size=args.batch, verbose=0)

        def pipeline_only():
            for _ in augmented_batches(paths, params, size, args.batch, resampling):
                pass

        def extraction():
            extract_to_store(folder / "bench.h5", paths, labels, ids, params, feature_fn, size,
                             args.batch, "float16", {"benchmark": True}, resampling)

        pipeline_only()
        extraction()
        a = n / best_of(args.repeats, bare_predict)
        b = n / best_of(args.repeats, pipeline_only)
        c = n / best_of(args.repeats, extraction)

    bound = 1.0 / (1.0 / a + 1.0 / b)
    print(f"{args.arch} at {args.size} px, {n} JPEG images, batch {args.batch}, "
          f"{os.cpu_count()} CPUs, best of {args.repeats}")
    print(f"(a) bare model.predict, preprocessed in memory : {a:8.1f} img/s")
    print(f"(b) decode + resize + augment alone            : {b:8.1f} img/s")
    print(f"(c) extraction code, HDF5 writing included     : {c:8.1f} img/s")
    print(f"back-to-back bound 1/(1/a + 1/b)               : {bound:8.1f} img/s")
    print(f"c / bound = {c / bound:.3f}   (target >= 0.9)")
    print(f"c / a     = {c / a:.3f}")


if __name__ == "__main__":
    main()
