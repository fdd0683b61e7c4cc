"""The device check: the package's own extraction on a GPU, under Keras' JAX or torch backend (no
TensorFlow, no Snakemake needed).

In a temporary folder it writes a pixel store of --images synthetic photos (smooth colour fields,
edges and noise) of --size pixels, a dataset index, and K manifests (--k epochs of rotations,
shifts, zoom, flips, brightness), then extracts the K epochs with ``augcache.jobs.extraction.extract_epoch``
(float16 stores, as the workflow writes them). It prints one JSON line each:

- ``extraction``: images/s of each epoch's extraction (reading, augmenting, the base, storing), the
  bare base's images/s on the same batches already on the device (no reading, no augmentation),
  and their ratio (c/a);
- ``feed``: images/s of the pixel store read in an epoch's order, against slices in storage order;
- ``bfloat16``: the same epoch extracted with compute_dtype mixed_bfloat16: largest and mean
  difference from float32, relative to the largest and mean feature;
- ``determinism``: the same epoch extracted twice: byte-identical or not;
- ``memory``: peak device memory (bytes) and the process's peak RSS.

    KERAS_BACKEND=jax python benchmarks/gpu_check.py [--images 4096] [--size 224] [--k 3]
        [--batch 256] [--architecture ResNet50]
    KERAS_BACKEND=jax python benchmarks/gpu_check.py --small      # CPU sizes, as the suite runs it

The base has random weights (nothing is downloaded); it runs on the backend's first device.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package

import numpy as np

AUGMENT = {"rotation_range": 15, "width_shift_range": 0.1, "height_shift_range": 0.1, "zoom_range": 0.1,
           "horizontal_flip": True, "brightness_range": [0.8, 1.2], "fill_mode": "reflect"}
CLASSES = 4


def emit(check: str, **fields) -> None:
    print(json.dumps({"check": check, **fields}), flush=True)


def synthetic_photos(n: int, size: int, seed: int = 0):
    """Batches of (images, labels): smooth colour fields with an edge and some noise, one class
    per colour family."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for start in range(0, n, 64):
        m = min(64, n - start)
        labels = rng.integers(0, CLASSES, m)
        base = rng.uniform(0, 1, (m, 1, 1, 3)) * 0.5 + np.eye(CLASSES, 3)[labels][:, None, None, :] * 0.5
        angle = rng.uniform(0, np.pi, (m, 1, 1))
        edge = (np.cos(angle) * xx + np.sin(angle) * yy > rng.uniform(0.3, 0.7, (m, 1, 1)))[..., None]
        image = base * (0.6 + 0.4 * edge) + rng.normal(0, 0.03, (m, size, size, 3))
        yield (np.clip(image, 0, 1) * 255).astype(np.uint8), labels


def write_inputs(folder: Path, n: int, size: int, k: int):
    """(index path, pixel store path, manifest paths)."""
    import pandas as pd

    from augcache.data.dataset import write_index
    from augcache.augmentation.manifest import AugmentConfig, build_manifest, write_manifest
    from augcache.data.pixels import PixelWriter
    from augcache.core.provenance import sha256_file

    rows = []
    store = folder / "pixels.h5"
    with PixelWriter(store, n, (size, size), {"resize": "stretch"}) as writer:
        for images, labels in synthetic_photos(n, size):
            ids = [f"img{len(rows) + i:06d}" for i in range(len(images))]
            writer.write(images, ids)
            rows += [{"sample_id": i, "path": f"synthetic/{i}.png", "label": f"class{label}",
                      "label_index": int(label), "split": "train"} for i, label in zip(ids, labels)]
        index = folder / "index.csv"
        write_index(pd.DataFrame(rows), index)
        writer.attrs_at_close["index_sha256"] = sha256_file(index)
    aug = AugmentConfig.from_config(AUGMENT)
    manifests = []
    for epoch in range(k):
        path = folder / f"epoch_{epoch}.csv"
        write_manifest(build_manifest(pd.DataFrame(rows), aug, seed=0, epoch=epoch, size=(size, size)), path)
        manifests.append(path)
    return index, store, manifests


def read_features(path) -> np.ndarray:
    import h5py

    from augcache.store.features import read_rows

    with h5py.File(path, "r") as handle:
        return read_rows(handle)


def peak_device_bytes() -> int | None:
    from augcache.core import backend

    if backend.name() == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use")
    if backend.name() == "torch":
        import torch

        return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--architecture", default="ResNet50")
    parser.add_argument("--small", action="store_true", help="CPU sizes: 64 images of 32 px, K 2, batches of 16, "
                                                              "MobileNetV2")
    args = parser.parse_args()
    if args.small:
        args.images, args.size, args.k, args.batch, args.architecture = 64, 32, 2, 16, "MobileNetV2"

    from keras import ops

    from augcache.core import backend
    from augcache.jobs.extraction import extract_epoch
    from augcache.base.conv_base import BaseSpec, feature_function
    from augcache.augmentation.manifest import AugmentConfig, read_manifest
    from augcache.data.pixels import PixelStore, open_pixels
    from augcache.base.store_fields import CacheConfig

    backend.configure(deterministic_ops=True)
    emit("device", backend=backend.name(), device=backend.device_description(), images=args.images,
         size=args.size, k=args.k, batch=args.batch, architecture=args.architecture)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        index, store, manifests = write_inputs(folder, args.images, args.size, args.k)
        size = (args.size, args.size)
        spec = BaseSpec(args.architecture, size, pooling="avg", seed=0)
        aug = AugmentConfig.from_config(AUGMENT)
        cache = CacheConfig(dtype="float16", batch_size=args.batch)

        def pixels():
            return open_pixels(size, "stretch", store, index)

        # the K epochs, the base built once (as a job of several epochs does)
        built, seconds = None, []
        for epoch, manifest in enumerate(manifests):
            start = time.perf_counter()
            built = extract_epoch(manifest, folder / f"epoch_{epoch}.h5", epoch=epoch, spec=spec, aug=aug,
                                  cache=cache, pixels=pixels(), built=built)
            seconds.append(time.perf_counter() - start)
        per_epoch = [round(args.images / s, 1) for s in seconds]

        # the bare base on the same batches, already on the device
        model, bottom, preprocess = built
        run = feature_function(bottom, preprocess, size)
        batches = [ops.convert_to_tensor(b.astype(np.float32))
                   for b in PixelStore(store).batches(np.arange(args.images), args.batch)]
        ops.convert_to_numpy(run(batches[0]))  # compiled before timing
        start = time.perf_counter()
        for batch in batches:
            out = run(batch)
        ops.convert_to_numpy(out)
        bare = args.images / (time.perf_counter() - start)
        best = max(per_epoch[1:] or per_epoch)
        emit("extraction", epochs_images_per_s=per_epoch, bare_base_images_per_s=round(bare, 1),
             extraction_over_bare=round(best / bare, 3))

        # the feed alone
        order = PixelStore(store).rows(read_manifest(manifests[0])["sample_id"].tolist())
        start = time.perf_counter()
        sum(len(b) for b in PixelStore(store).batches(order, args.batch))
        feed = args.images / (time.perf_counter() - start)
        start = time.perf_counter()
        sum(len(b) for b in PixelStore(store).batches(np.arange(args.images), args.batch))
        ordered = args.images / (time.perf_counter() - start)
        emit("feed", manifest_order_images_per_s=round(feed, 1), storage_order_images_per_s=round(ordered, 1),
             ratio=round(feed / ordered, 3))

        # bfloat16 against float32, epoch 0
        half = BaseSpec(args.architecture, size, pooling="avg", seed=0, compute_dtype="mixed_bfloat16")
        extract_epoch(manifests[0], folder / "epoch_0_bf16.h5", epoch=0, spec=half, aug=aug,
                      cache=CacheConfig(dtype="float32", batch_size=args.batch), pixels=pixels())
        extract_epoch(manifests[0], folder / "epoch_0_f32.h5", epoch=0, spec=spec, aug=aug,
                      cache=CacheConfig(dtype="float32", batch_size=args.batch), pixels=pixels(), built=built)
        f32, bf16 = read_features(folder / "epoch_0_f32.h5"), read_features(folder / "epoch_0_bf16.h5")
        difference = np.abs(bf16 - f32)
        emit("bfloat16", largest_difference_over_largest_feature=float(difference.max() / np.abs(f32).max()),
             mean_difference_over_mean_feature=float(difference.mean() / np.abs(f32).mean()))

        # determinism: epoch 0 again, a new build of the base
        extract_epoch(manifests[0], folder / "epoch_0_again.h5", epoch=0, spec=spec, aug=aug,
                      cache=CacheConfig(dtype="float32", batch_size=args.batch), pixels=pixels())
        again = read_features(folder / "epoch_0_again.h5")
        emit("determinism", byte_identical=bool(again.tobytes() == f32.tobytes()),
             largest_difference=float(np.abs(again - f32).max()))
    emit("memory", peak_device_bytes=peak_device_bytes(),
         peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


if __name__ == "__main__":
    main()
