"""The ``augcache`` command: classify images with an exported model, look into a store,
estimate a run's disk before running it, and remove the reuse entries no run uses.

    augcache predict results/model/model.keras path/to/images predictions.csv
    augcache inspect results/features/train/epoch_0.h5
    augcache estimate config/config.yaml [overlay.yaml ...]
    augcache gc [--dry-run]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

BLOCK_BYTES = 64 << 20


def _digest(dataset, with_ids=None) -> str:
    """sha256 of a dataset's rows as the writers hash them (block by block, in row order; the pixel
    store hashes each sample id and a NUL before its pixels)."""
    digest = hashlib.sha256()
    row_bytes = max(1, int(np.prod(dataset.shape[1:])) * dataset.dtype.itemsize)
    step = max(1, BLOCK_BYTES // row_bytes)
    for start in range(0, dataset.shape[0], step):
        block = dataset[start:start + step]
        if with_ids is None:
            digest.update(np.ascontiguousarray(block).tobytes())
        else:
            for sample_id, row in zip(with_ids[start:start + step], block):
                digest.update((sample_id.decode() if isinstance(sample_id, bytes) else sample_id).encode() + b"\0")
                digest.update(np.ascontiguousarray(row).tobytes())
    return digest.hexdigest()


def inspect_store(path) -> dict:
    """What a store is: format, datasets (shape, dtype), provenance, completeness, and whether its
    contents still match the checksum written with them."""
    import h5py

    from augcache.data.pixels import FORMAT as PIXEL_FORMAT
    from augcache.data.pixels import read_pixel_attrs
    from augcache.store.features import read_attrs
    from augcache.store.writer import StoreError, attr_value, reading

    from augcache.store.features import FORMAT as FEATURE_FORMAT

    path = Path(path)
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    report: dict = {"path": str(path), "bytes": path.stat().st_size}
    if not h5py.is_hdf5(path):
        report["verdict"] = ("refused: not an HDF5 file; augcache stores are the .h5 files the workflow writes "
                             "(results/dataset/pixels.h5, results/features/...)")
        return report
    try:
        with reading(path), h5py.File(path, "r") as handle:
            attrs = {key: attr_value(value) for key, value in handle.attrs.items()}
            report["format"] = attrs.get("format")
            report["complete"] = bool(attrs.get("complete"))
            report["datasets"] = {name: {"shape": list(d.shape), "dtype": str(d.dtype)}
                                  for name, d in handle.items()}
            report["provenance"] = attrs
            if attrs.get("format") not in (PIXEL_FORMAT, FEATURE_FORMAT):
                report["verdict"] = (f"refused: an HDF5 file, but not an augcache store (format "
                                     f"{attrs.get('format')!r})")
                return report
            want = found = None  # a merged store's epochs, or a missing dataset: read_attrs below says
            if attrs.get("format") == PIXEL_FORMAT and {"pixels", "sample_ids"} <= set(handle):
                want, found = attrs.get("pixels_sha256"), _digest(handle["pixels"], handle["sample_ids"][:])
            elif "epoch_files" not in attrs and "features" in handle:
                want, found = attrs.get("features_sha256"), _digest(handle["features"])
        (read_pixel_attrs if report["format"] == PIXEL_FORMAT else read_attrs)(path)
    except (StoreError, OSError) as err:
        report["verdict"] = f"refused: {err}"
        return report
    if want is not None and found != want:
        report["verdict"] = f"damaged: contents hash to {found[:16]}…, written as {want[:16]}…"
    else:
        report["verdict"] = "ok: complete, and every checksum matches"
    return report


def _counts(settings, workdir: Path):
    """Sample ids of each split: from the workflow's index when it exists, else from the source
    listing (the demo's own names for the built-in demo)."""
    import pandas as pd

    from augcache.data.dataset import assign_splits, read_index
    from augcache.data.listing import list_source

    index_path = workdir / "results/dataset/index.csv"
    if index_path.is_file():
        return read_index(index_path), f"{index_path}"
    config = settings.config
    if settings.uses_demo_data:
        from augcache.data.demo import demo_index

        return demo_index(config["demo"]), "the built-in demo"
    source = workdir / settings.data_source()
    test_dir = settings.test_dir and workdir / settings.test_dir
    candidates, _, _ = list_source(source, test_dir)
    table = pd.DataFrame([c.__dict__ for c in candidates]).sort_values("sample_id", kind="stable")
    return assign_splits(table.reset_index(drop=True), config["data"]["val_fraction"], config["seed"]), f"{source} (every listed file counted; files found bad later are left out)"


def _feature_shape(settings) -> tuple:
    """The shape of what the cache holds (the base's output, or the activations at its split),
    from a built base without downloading anything (ImageNet weights do not change it)."""
    import dataclasses

    from augcache.base.conv_base import bottom_of, build_bottom

    spec = settings.base_spec()
    if settings.uses_demo_base:
        from augcache.data.demo import build_demo_base

        bottom = bottom_of(build_demo_base(spec.image_size[0]), spec.split_at)
    else:
        weights = None if settings.fetches_weights else spec.weights
        _, bottom, _ = build_bottom(dataclasses.replace(spec, weights=weights))
    return tuple(int(d) for d in bottom.output.shape[1:])


def estimate(config_paths, workdir=".") -> dict:
    """The disk a config's run takes (see :mod:`augcache.jobs.plan`), without running anything:
    its own stores and those of each of its variants (under results/variants/<name>/)."""
    from augcache.core.paths import VARIANT_PREFIX
    from augcache.jobs.settings import Settings, load_config
    from augcache.jobs.plan import prefixed, run_size, summary

    workdir = Path(workdir)
    settings = Settings(load_config(config_paths))
    index, counted_from = _counts(settings, workdir)
    run = run_size(index, _feature_shape(settings), settings.config["cache"]["dtype"])
    stores = run.plan(settings.config)
    variants = {}
    for name in settings.config["variants"]:
        variant = settings.variant(name)
        variant_run = run_size(index, _feature_shape(variant), variant.config["cache"]["dtype"])
        variant_stores = prefixed(variant_run.plan(variant.config, variant=True), VARIANT_PREFIX.format(name=name))
        variants[name] = sum(s.bytes for s in variant_stores)
        stores += variant_stores
    result = summary(run, stores, settings.config)
    result["variants_bytes"] = variants
    result["counted_from"] = counted_from
    return result


class CommandError(Exception):
    """A mistake in the command's arguments: printed as one line, without a traceback."""


def _parser() -> argparse.ArgumentParser:
    from augcache.core.version import __version__

    parser = argparse.ArgumentParser(prog="augcache", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"augcache {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="classify every image below a folder with an exported model")
    predict.add_argument("model", help="an exported model: results/model/model.keras")
    predict.add_argument("folder", help="folder of images (searched recursively)")
    predict.add_argument("out", help="CSV to write: path, label, probability (and what the options add)")
    predict.add_argument("--classes", help="the model's classes JSON (default: classes.json beside the model)")
    predict.add_argument("--top-k", type=int, default=1, metavar="N",
                         help="the N most probable classes of each image: label_2, probability_2, ... (default 1)")
    predict.add_argument("--probabilities", action="store_true",
                         help="also every class's probability, one column per class: probability_<class>")
    predict.add_argument("--batch-size", type=int, default=64)
    predict.add_argument("--tta", type=int, default=0, metavar="V",
                         help="average over each image and V augmented views of it, drawn as the workflow "
                              "draws the validation images' views (eval.tta_views; default 0: none)")
    inspect = commands.add_parser("inspect", help="provenance, shape, completeness and checksum of a store")
    inspect.add_argument("store", nargs="+", help="an .h5 store written by augcache")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    estimate_cmd = commands.add_parser("estimate", help="disk a run takes, before running it")
    estimate_cmd.add_argument("config", nargs="+", help="config file, then overlays")
    estimate_cmd.add_argument("--workdir", default=".", help="where the workflow runs (default: here)")
    estimate_cmd.add_argument("--json", action="store_true", help="print JSON")
    gc = commands.add_parser("gc", help="remove the kept outputs no run uses any more (results/reuse)")
    gc.add_argument("--workdir", default=".", help="where the workflow runs (default: here)")
    gc.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    return parser


def predict_command(args) -> int:
    """augcache predict: the exported model on every image below a folder, into a CSV."""
    from augcache.core.atomic import write_csv

    model = Path(args.model)
    if not model.is_file():
        raise CommandError(f"model: {model} does not exist (the workflow exports results/model/model.keras)")
    classes = Path(args.classes) if args.classes else model.with_name("classes.json")
    if not classes.is_file():
        raise CommandError(f"{'--classes' if args.classes else 'model'}: {classes} does not exist; the workflow "
                           "writes classes.json beside the model it exports (pass --classes to name another)")
    if not Path(args.folder).is_dir():
        raise CommandError(f"folder: {args.folder} is not a folder")
    if args.top_k < 1:
        raise CommandError(f"--top-k: {args.top_k} is not a number of classes (1 or more)")
    if args.tta < 0:
        raise CommandError(f"--tta: {args.tta} is not a number of views (0 or more)")
    if args.tta and "tta" not in json.loads(classes.read_text()):
        raise CommandError(f"--tta: {classes} records no test-time augmentation (exported by an older version); "
                           "run the workflow again to export the model with it")
    from augcache.training.full_model import predict_folder

    table = predict_folder(model, classes, args.folder, args.batch_size, top_k=args.top_k,
                           probabilities=args.probabilities, folder_key="folder", tta_views=args.tta)
    write_csv(args.out, table)
    print(f"{len(table)} images classified -> {args.out}")
    return 0


def inspect_command(args) -> int:
    from augcache.store.space import mib

    reports = [inspect_store(path) for path in args.store]
    if args.json:
        print(json.dumps(reports, indent=2, default=str))
    for report in [] if args.json else reports:
        print(f"{report['path']}: {report.get('format')}, {mib(report['bytes'])}")
        for name, dataset in report.get("datasets", {}).items():
            print(f"  {name}: {tuple(dataset['shape'])} {dataset['dtype']}")
        for key, value in sorted(report.get("provenance", {}).items()):
            print(f"  {key} = {value}")
        print(f"  verdict: {report['verdict']}")
    return 0 if all(r["verdict"].startswith("ok") for r in reports) else 1


def estimate_command(args) -> int:
    from augcache.store.space import mib

    for path in args.config:
        if not Path(path).is_file():
            raise CommandError(f"config: {path} does not exist")
    result = estimate(args.config, args.workdir)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"images: {result['n_train']} training, {result['n_val']} validation (from {result['counted_from']})")
    print(f"features: {tuple(result['feature_shape'])} {result['dtype']}, "
          f"{result['bytes_per_sample_epoch']} bytes per sample-epoch")
    print(f"cached epochs: {result['formula']} = {mib(result['epochs_feature_bytes'])} of features; "
          f"{mib(result['epochs_bytes'])} in {result['epoch_stores']} stores (whole chunks, labels, ids)")
    for path, size in result["stores"].items():
        print(f"  {path}: {mib(size)}")
    print(f"total {mib(result['total_bytes'])}, plus at most {mib(result['hdf5_metadata_at_most_bytes'])} "
          "of HDF5 metadata")
    return 0


def gc_command(args) -> int:
    """augcache gc: the reuse entries no output uses any more (see augcache.jobs.reuse)."""
    from augcache.core.paths import FORMER_REUSE
    from augcache.jobs.gc import collect_garbage, migrate
    from augcache.jobs.reuse import ENTRIES
    from augcache.store.space import mib

    root = Path(args.workdir) / ENTRIES
    if not root.parent.is_dir():
        raise CommandError(f"--workdir: {Path(args.workdir) / 'results'} does not exist (run gc where the workflow runs)")
    if args.dry_run:  # changes nothing: the entries an earlier version kept in results/cache are listed where they are
        former = Path(args.workdir) / FORMER_REUSE
        removed, freed = collect_garbage(root, dry_run=True)
        if former.is_dir():
            more, more_freed = collect_garbage(former, dry_run=True)
            removed, freed = removed + more, freed + more_freed
    else:
        migrate(root.parent)
        removed, freed = collect_garbage(root)
    for entry in removed:
        print(f"{'would remove' if args.dry_run else 'removed'} {entry}")
    print(f"{len(removed)} unused entr{'y' if len(removed) == 1 else 'ies'}, {mib(freed)}"
          f"{' would be freed' if args.dry_run else ' freed'}; entries an output uses (a link or a copy in "
          "place) and those of running jobs are kept")
    return 0


COMMANDS = {"predict": predict_command, "inspect": inspect_command, "estimate": estimate_command,
            "gc": gc_command}


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (CommandError, ValueError, OSError) as err:
        # ValueError and OSError carry the package's own messages (what is wrong, where, what to do)
        print(f"augcache {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
