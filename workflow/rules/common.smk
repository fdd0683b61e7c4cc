import hashlib
import json
import os
import sys
from pathlib import Path

from snakemake.utils import validate

# this workflow's own augcache package, wherever snakemake runs from and whatever is installed
sys.path.insert(0, workflow.basedir)

from augcache.conv_base import BaseSpec
from augcache.manifest import AugmentConfig
from augcache.modes import MODES, RUN_FILES, cached_k_values, stage
from augcache.paths import *  # the path pattern of every output
from augcache.paths import repeat_prefix
from augcache.sweep import sweep_points

validate(config, schema="../schemas/config.schema.yaml", set_default=True)

# "train" (the head on the base's features) or "finetune" (the top of the base and the head, on
# the activations at conv_base.split): the folder every training run writes to
STAGE = stage(config)

# --sdm conda environments: the CPU build of TensorFlow for every rule, and the CUDA build for the
# rules that declare gpu=1 when software.tensorflow is gpu.
ENV = "../../envs/augcache.yaml"
GPU_ENV = (
    "../../envs/augcache-gpu.yaml" if config["software"]["tensorflow"] == "gpu" else ENV
)
# Training on stored features needs a GPU (and its environment) only when it fine-tunes layers
# of the base.
STORED_FEATURES_GPU = 1 if STAGE == "finetune" else 0
STORED_FEATURES_ENV = GPU_ENV if STAGE == "finetune" else ENV


wildcard_constraints:
    rep=r"(repeat_\d+/)?",
    epoch=r"\d+",
    k=r"\d+",
    r=r"\d+",
    shard=r"\d+",
    point=r"[^/]+",


USE_CSV = bool(config["data"]["csv"])
USE_DEMO_DATA = config["data"]["dir"] == "demo" and not USE_CSV
USE_DEMO_BASE = config["conv_base"]["architecture"] == "demo"
FETCH_WEIGHTS = config["conv_base"]["weights"] == "imagenet" and not USE_DEMO_BASE
FETCHED_WEIGHTS = (
    f"results/base/{config['conv_base']['architecture']}_imagenet.weights.h5"
)
TEST_DIR = config["data"]["test_dir"]
USE_PIXEL_STORE = config["data"]["pixel_store"]
# Pixels are decoded by the index step itself, or by separate shard jobs.
DECODE_SHARDS = config["data"]["decode_shards"] if USE_PIXEL_STORE else 1
PIXEL_SIZE = list(config["data"]["pixel_size"] or config["data"]["image_size"])


def _check_config():
    data_dir = config["data"]["dir"]
    if USE_CSV and not Path(config["data"]["csv"]).is_file():
        raise ValueError(f"data.csv: file {config['data']['csv']!r} does not exist")
    if not USE_CSV and not USE_DEMO_DATA and not Path(data_dir).is_dir():
        raise ValueError(f"data.dir: folder {data_dir!r} does not exist")
    user_base = BaseSpec.from_config({**config["conv_base"], "image_size": [1, 1]})
    for key, path in user_base.files.items():
        kind = "model" if key == "conv_base.architecture" else "weights"
        if not Path(path).is_file():
            raise ValueError(f"{key}: {kind} file {path!r} does not exist")
    # ranges in order, Keras layer spellings that have a meaning here
    AugmentConfig.from_config(config["augment"])
    image_size = config["data"]["image_size"]
    if any(p < i for p, i in zip(PIXEL_SIZE, image_size)):
        raise ValueError(
            f"data.pixel_size: {PIXEL_SIZE} is smaller than data.image_size {image_size}; pixels are "
            "kept at the image size or larger"
        )
    if STAGE == "finetune" and config["head_sweep"]:
        raise ValueError(
            "head_sweep: a sweep chooses among heads trained on the base's features; with "
            "conv_base.split the runs fine-tune the top of the base instead. Choose the head with "
            "a sweep without conv_base.split first, then set it in head: and split the base"
        )


_check_config()


def epochs():
    """Cached epoch numbers 0..K-1."""
    return list(range(config["cache"]["epochs"]))


def repeat_number(rep):
    return 0 if rep == "" else int(rep.removeprefix("repeat_").rstrip("/"))


def manifest_seed(wildcards):
    return config["seed"] + repeat_number(wildcards.rep)


def k_values():
    """K of every cached run: the sweep and cache.epochs."""
    return cached_k_values(config)


def repeats():
    return list(range(config["train"]["repeats"]))


def run_dirs():
    """Output folder of every training run the config asks for: cached runs for every K and
    repeat, one replay of the main cached run, and every repeat of the modes without K.
    """
    modes = config["train"]["modes"]
    dirs = [MODES["cached"].run_dir(k, r, STAGE) for k in k_values() for r in repeats()]
    if "replay" in modes:
        dirs.append(MODES["replay"].run_dir(config["cache"]["epochs"], 0, STAGE))
    for mode in ("onthefly", "noaug"):
        if mode in modes:
            dirs += [MODES[mode].run_dir(0, r, STAGE) for r in repeats()]
    return dirs


def run_outputs(mode):
    """A training job's named outputs: the files of its run folder."""
    return multiext(f"{MODES[mode].run_folder(STAGE)}/", **RUN_FILES)


def run_log(mode):
    return f"{LOGS}/{MODES[mode].run_folder(STAGE).removeprefix('results/')}.log"


def train_params(mode):
    """What a training job's results depend on: its mode, seed, head and base, and for modes
    that augment or run the base, the augmentation and the pixel size."""
    params = {
        "mode": mode,
        "seed": run_seed,
        "head": config["head"],
        "base": base_params(),
        "cache": cache_params(),
    }
    if MODES[mode].manifests:
        params["augment"] = config["augment"]
    if MODES[mode].runs_base:
        params["pixel_size"] = PIXEL_SIZE
    if STAGE == "finetune":
        params["finetune"] = config["finetune"]
    return params


# head_sweep: {point name: its head config}; empty without a sweep
SWEEP_POINTS = sweep_points(config["head_sweep"], config["head"])


def point_dirs(point):
    return [SWEEP_RUN.format(point=point, r=r) for r in repeats()]


def selection_candidates():
    """{candidate: its run folders, repeat 0 first}: the sweep's points, or without a sweep the
    cached runs of K = cache.epochs."""
    if SWEEP_POINTS:
        return {point: point_dirs(point) for point in SWEEP_POINTS}
    k = config["cache"]["epochs"]
    return {"head": [MODES["cached"].run_dir(k, r, STAGE) for r in repeats()]}


def candidate_files(name, first_repeat_only=False):
    """A file of every candidate run (or of each candidate's repeat 0)."""
    dirs = selection_candidates().values()
    return [
        f"{run}/{name}" for d in dirs for run in (d[:1] if first_repeat_only else d)
    ]


def point_head(wildcards):
    return SWEEP_POINTS[wildcards.point]


def swept_settings():
    """{point: the settings it sweeps}."""
    keys = list(config["head_sweep"])
    return {point: {k: head[k] for k in keys} for point, head in SWEEP_POINTS.items()}


def main_stores(wildcards):
    """The epoch stores of K = cache.epochs for repeat r (sweep points train on them)."""
    return epoch_files(EPOCH_STORE, wildcards.r, config["cache"]["epochs"])


def main_manifests(wildcards):
    return epoch_files(MANIFEST, wildcards.r, config["cache"]["epochs"])


def variant_config(overlay):
    """A variant's config: this one, its overlay merged in, without variants of its own."""
    import copy

    from snakemake.utils import update_config

    merged = copy.deepcopy(config)
    update_config(merged, copy.deepcopy(overlay))
    merged["variants"] = {}
    return merged


def variant_summaries(wildcards):
    """Summaries of each variant's cached runs of K = its cache.epochs, for the report."""
    files = {}
    for name, overlay in config["variants"].items():
        merged = variant_config(overlay)
        k = merged["cache"]["epochs"]
        prefix = VARIANT_PREFIX.format(name=name)
        files[f"variant_{name}"] = [
            f"{prefix}/{MODES['cached'].run_dir(k, r, stage(merged))}/summary.json"
            for r in repeats()
        ]
    return files


def run_files(name):
    return [f"{d}/{name}" for d in run_dirs()]


def epoch_files(pattern, repeat, k):
    """One file per cached epoch 0..k-1 of a repeat (its stores or its manifests)."""
    return [pattern.format(rep=repeat_prefix(repeat), epoch=e) for e in range(int(k))]


def cached_stores(wildcards):
    return epoch_files(EPOCH_STORE, wildcards.r, wildcards.k)


def epoch_shards(wildcards):
    """The shard stores an epoch store is merged from."""
    shards = range(config["cache"]["shards_per_epoch"])
    return [
        SHARD_STORE.format(rep=wildcards.rep, epoch=wildcards.epoch, shard=s)
        for s in shards
    ]


def cached_manifests(wildcards):
    return epoch_files(MANIFEST, wildcards.r, wildcards.k)


def run_seed(wildcards):
    return config["seed"] + int(wildcards.r)


def final_outputs():
    # the epoch stores too: one deleted after the merge is computed again (and merged again)
    # instead of leaving the merged store pointing at nothing
    outputs = [
        TRAIN_STORE,
        *expand(EPOCH_STORE, rep="", epoch=epochs()),
        VAL_STORE,
        REPORT,
        MODEL,
        BASE_INFO,
    ]
    if config["predict"]["dir"]:
        outputs.append(PREDICTIONS)
    if HAS_TEST:
        outputs.append(TEST_SCORES)
    return outputs


def data_source():
    """The folder or CSV listing the index is built from."""
    if USE_CSV:
        return config["data"]["csv"]
    return DEMO_IMAGES if USE_DEMO_DATA else config["data"]["dir"]


def index_input(wildcards):
    return [DEMO_IMAGES] if USE_DEMO_DATA else []


def data_fingerprint(wildcards):
    """Changes when the user's images (or CSV listing) change, so the index is rebuilt.

    A function of the index job, so the data are walked only when Snakemake plans that job (once
    per run, in the main process), not when a job process parses the workflow."""
    from augcache.dataset import listing_fingerprint

    test = listing_fingerprint(TEST_DIR) if TEST_DIR else ""
    return ("demo" if USE_DEMO_DATA else listing_fingerprint(data_source())) + test


def csv_has_test_rows():
    import pandas as pd

    table = pd.read_csv(config["data"]["csv"], dtype=str, keep_default_na=False)
    return "split" in table.columns and (table["split"].str.strip() == "test").any()


# Images scored once by the exported model: data.test_dir, or a CSV listing's test rows.
HAS_TEST = bool(TEST_DIR) or (USE_CSV and csv_has_test_rows())


def test_report_input(wildcards):
    return {"test": TEST_SCORES} if HAS_TEST else {}


def test_params():
    """data.test_dir for the index job, when set (so a config without it keeps its params)."""
    return {"test_dir": TEST_DIR} if TEST_DIR else {}


def all_cores():
    """Threads of a local job that may use the whole machine: --cores, or every CPU when a cluster
    run gives no --cores (Snakemake caps local jobs to --local-cores)."""
    cores = workflow.resource_settings.cores
    return cores if isinstance(cores, int) else os.cpu_count()


def index_outputs():
    """The index step's outputs: the index, the skipped files and, with data.pixel_store, the
    pixels of every indexed image."""
    outputs = {"index": INDEX, "skipped": SKIPPED}
    if USE_PIXEL_STORE and DECODE_SHARDS == 1:
        outputs["pixels"] = PIXELS
    return outputs


def index_pixel_params():
    """What the pixels the index step stores depend on (nothing when it stores none)."""
    if "pixels" not in index_outputs():
        return {}
    return pixel_params()


def pixel_params():
    return {"pixel_size": PIXEL_SIZE, "resize": config["data"]["resize"]}


def pixel_shards(wildcards):
    """The shard stores the pixel store is merged from."""
    return expand(PIXEL_SHARD, shard=range(DECODE_SHARDS))


def pixel_input(wildcards):
    """What a job that reads pixels needs: the index and, with data.pixel_store, the pixel store."""
    inputs = {"index": INDEX}
    if USE_PIXEL_STORE:
        inputs["pixels"] = PIXELS
    return inputs


def base_files(wildcards):
    """Files the conv base is made from (the demo base and fetched weights included), so that
    replacing one rebuilds it."""
    return list(BaseSpec.from_config(base_params()).files.values())


def base_input(wildcards):
    """What a job running the conv base needs: the checked base description."""
    return checked_base()


def base_params():
    """conv_base settings with 'demo' resolved to the demo base file."""
    base = dict(config["conv_base"])
    if USE_DEMO_BASE:
        base["architecture"] = DEMO_BASE
    if FETCH_WEIGHTS:
        base["weights"] = FETCHED_WEIGHTS
    base["image_size"] = list(config["data"]["image_size"])
    base["resize"] = config["data"]["resize"]
    base["seed"] = config["seed"]
    base["compute_dtype"] = config["cache"]["compute_dtype"]
    return base


def base_check_params():
    """Everything the base check depends on: the base, the storage dtype and the pixels."""
    return {
        "base": base_params(),
        "dtype": config["cache"]["dtype"],
        "pixel_size": PIXEL_SIZE,
    }


def checked_base():
    """The base check's output for the current config."""
    text = json.dumps(base_check_params(), sort_keys=True)
    return CHECKED_BASE.format(key=hashlib.sha256(text.encode()).hexdigest()[:16])


def train_mem_mb(wildcards, input):
    """Memory (MB) of a training job: its stores as float32 (up to 16 GB; beyond, it streams them)
    plus what TensorFlow and Python take, so several training jobs on one machine fit its memory.
    """
    return int(1500 + min(2.4 * input.size_mb, 16000))


def cache_params():
    cache = config["cache"]
    return {k: cache[k] for k in ("dtype", "compression", "batch_size")}


def storage_params():
    """The settings that decide how many stores a run writes and their sizes."""
    return {
        "cache": {k: config["cache"][k] for k in ("epochs", "dtype")},
        "train": {k: config["train"][k] for k in ("repeats", "sweep_epochs", "modes")},
        "data": {
            k: config["data"][k] for k in ("pixel_store", "pixel_size", "image_size")
        },
    }


def extract_params(**extra):
    """What an extraction job's features depend on (plus extra, e.g. its split)."""
    return {
        "base": base_params(),
        "cache": cache_params(),
        "pixel_size": PIXEL_SIZE,
        **extra,
    }
