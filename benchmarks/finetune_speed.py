"""Seconds per fine-tuning epoch: from activations cached at the split, and on the fly, side by side.

For each base (MobileNetV2 at 160 px split before its last two blocks, VGG16 at 160 px split
before block5; random weights, so nothing is downloaded), on the same demo-shaped JPEGs:

- cached: the workflow's fine-tuning (``train_finetune``) reading the split activations of one
  cached epoch (``CachedEpochs``);
- on the fly: the same fine-tuning with the bottom run every epoch on freshly augmented images
  (``ConvOnTheFly``), as the ``onthefly`` mode does.

The epoch time is the median over the fine-tuning epochs (the top and the head both learning). The
share of an on-the-fly epoch that caching saves, 1 - cached / on the fly, approaches the bottom's
share of the base's forward FLOPs when the top's backward pass and the head cost little; the target
is a saved share of at least 0.8 x that bound. The top's backward pass, which caching cannot save,
costs about twice its forward pass; the last column gives the share saved with it counted.

    ./run bench finetune_speed.py [--images 96] [--epochs 3] [--bases MobileNetV2:block_14_add,VGG16:block4_pool]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET = 0.8


def write_images(root: Path, images: int, size: int):
    """`images` training and images // 4 validation JPEGs of the demo shapes; their index."""
    import tensorflow as tf

    from augcache.data.dataset import index_folder
    from augcache.data.demo import DEMO_CLASSES, TRAIN_SPREAD, VAL_SPREAD, render

    rng = np.random.default_rng(0)
    for split, count, spread in (("train", images, TRAIN_SPREAD), ("val", max(3, images // 4), VAL_SPREAD)):
        for i in range(count):
            name = DEMO_CLASSES[i % len(DEMO_CLASSES)]
            path = root / "data" / split / name / f"{i:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tf.io.encode_jpeg(render(name, size, rng, spread)).numpy())
    return index_folder(root / "data", 0.2, 0)


def measure(arch: str, split: str, size: int, index, root: Path, epochs: int) -> dict:
    from augcache.jobs.extraction import extract_epoch, extract_unaugmented
    from augcache.base.conv_base import BaseSpec, build_bottom, feature_function, split_base, split_shares
    from augcache.data.dataset import class_names
    from augcache.training.finetune import FinetuneConfig, train_finetune
    from augcache.training.head import HeadConfig
    from augcache.augmentation.manifest import AugmentConfig, build_manifest, write_manifest
    from augcache.data.pixels import open_pixels
    from augcache.base.store_fields import CacheConfig
    from augcache.base.store_fields import config_provenance
    from augcache.training.train import CachedEpochs, ConvOnTheFly, fresh_manifests
    from augcache.store.features import load_store

    spec = BaseSpec(arch, (size, size), split=split)
    aug = AugmentConfig.from_config({"rotation_range": 20, "width_shift_range": 0.1, "height_shift_range": 0.1,
                                     "horizontal_flip": True})
    # float32: random weights give activations too small for float16 in the deep layers
    settings = CacheConfig(dtype="float32", batch_size=32)
    train_rows = index[index["split"] == "train"]
    pixels = open_pixels(spec.image_size, spec.resize)
    folder = root / arch
    folder.mkdir()
    extract_unaugmented(index, "val", folder / "val.h5", spec, settings, pixels)
    manifest = folder / "epoch_0.csv"
    write_manifest(build_manifest(train_rows, aug, 0, 0, spec.image_size), manifest)
    start = time.perf_counter()
    extract_epoch(manifest, folder / "epoch_0.h5", 0, spec, aug, settings, pixels)
    extraction = time.perf_counter() - start
    val_x, val_y, attrs = load_store(folder / "val.h5", dict(config_provenance(spec, None, settings), split="val"))
    shape, n, classes = val_x.shape[1:], len(train_rows), len(class_names(index))
    head = HeadConfig(flatten="avg", hidden_units=(64,), epochs=1, batch_size=32)
    tune = FinetuneConfig(learning_rate=1e-5, epochs=epochs)

    def finetune_epoch_seconds(source) -> float:
        model, bottom, _ = build_bottom(spec)
        _, top = split_base(model, split)
        _, metrics, _, _ = train_finetune(source, n, shape, classes, (val_x, val_y), head, tune, top, 0, arch)
        return float(metrics["seconds"].iloc[head.epochs:].median())

    expected = dict(config_provenance(spec, aug, settings), split="train", weights_sha256=attrs["weights_sha256"])
    cached = finetune_epoch_seconds(CachedEpochs([folder / "epoch_0.h5"], [manifest], expected))
    model, bottom, preprocess = build_bottom(spec)
    onthefly_source = ConvOnTheFly(fresh_manifests(train_rows, aug, 0, spec.image_size), pixels,
                                   feature_function(bottom, preprocess, spec.image_size), spec.image_size,
                                   settings.batch_size, aug.resampling, "float32")
    onthefly = finetune_epoch_seconds(onthefly_source)
    shares = split_shares(model, bottom)
    saved = 1.0 - cached / onthefly
    return {"arch": arch, "split": split, "activations": "x".join(map(str, shape)), "images": n,
            "extraction_s": extraction, "cached_s": cached, "onthefly_s": onthefly, "speedup": onthefly / cached,
            "saved": saved, "bound": shares["bottom_flops_share"], "saved_over_bound": saved / shares["bottom_flops_share"],
            "training_bound": training_bound(shares["bottom_flops_share"]),
            "bottom_params": shares["bottom_parameter_share"]}


def training_bound(bottom_share: float) -> float:
    """The share caching saves when the top's backward pass costs twice its forward pass (as a
    conv layer's input and weight gradients do): bottom / (bottom + 3 x top)."""
    return bottom_share / (bottom_share + 3 * (1 - bottom_share))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=96, help="training images")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (the median is reported)")
    parser.add_argument("--bases", default="MobileNetV2:block_14_add,VGG16:block4_pool",
                        help="comma-separated architecture:split-layer pairs")
    args = parser.parse_args()

    from augcache.core.backend import configure_tensorflow

    configure_tensorflow(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = write_images(Path(tmp), args.images, args.size)
        for pair in args.bases.split(","):
            arch, split = pair.split(":")
            rows.append(measure(arch, split, args.size, index, Path(tmp), args.epochs))
    print(f"\nfine-tuning epoch, {rows[0]['images']} training images at {args.size} px, CPU threads "
          f"{len(os.sched_getaffinity(0))}, median of {args.epochs} epochs")
    print(f"{'base':12} {'split':14} {'activations':12} {'cached s':>9} {'on the fly s':>13} {'speedup':>8} "
          f"{'saved':>6} {'bound':>6} {'saved/bound':>12}  target >= {TARGET}   {'with backward':>13}")
    for r in rows:
        verdict = "met" if r["saved_over_bound"] >= TARGET else "NOT met"
        print(f"{r['arch']:12} {r['split']:14} {r['activations']:12} {r['cached_s']:9.3f} {r['onthefly_s']:13.3f} "
              f"{r['speedup']:8.2f} {r['saved']:6.3f} {r['bound']:6.3f} {r['saved_over_bound']:12.3f}  {verdict:7}"
              f"            {r['training_bound']:13.3f}")
    print("bound: the bottom's share of the base's forward FLOPs (conv and dense layers); "
          "saved: 1 - cached / on the fly;\nwith backward: the share saved if the top's backward pass costs "
          "twice its forward pass (bottom / (bottom + 3 x top))")


if __name__ == "__main__":
    main()
