import os
import sys

from snakemake.utils import validate

# this workflow's own augcache package, wherever snakemake runs from and whatever is installed
sys.path.insert(0, workflow.basedir)

from augcache.core import backend
from augcache.base.hub import preset_files
from augcache.training.modes import MODES, RUN_FILES, CACHE_MODE, fold_of, fold_part
from augcache.core.paths import *  # the path pattern of every output
from augcache.core.paths import repeat_prefix
from augcache.jobs.gc import migrate
from augcache.jobs.reuse import pass_on_forced
from augcache.jobs.settings import Settings
from augcache.jobs.spellings import respell
from augcache.jobs.table import JOBS
from augcache.training import kinds
from augcache.training.sweep import sweep_points

# keys spelled the way earlier versions spelled them are read as today's, each noted once
for note in respell(config):
    if workflow.is_main_process:
        print(f"config: {note}", file=sys.stderr)
validate(config, schema="../schemas/config.schema.yaml", set_default=True)

# what follows from the config (augcache.jobs.settings); a mistake no job is needed to find stops here
SETTINGS = Settings(config)
SETTINGS.check()

# every job computes with the run's Keras backend (software.backend, or the KERAS_BACKEND this
# run started with): the jobs this process starts inherit it
backend.pass_on(SETTINGS.backend)

# a k-NN asking for more neighbours than an index made before has training images stops here
if workflow.is_main_process:
    SETTINGS.check_knn_against(INDEX)


# When the run starts (not on a dry run): the reuse entries an earlier version kept in results/cache
# move to results/reuse, before any job; and the jobs Snakemake was told to run again (--forcerun,
# --forceall, --force) compute instead of reusing what was kept: the jobs this process starts are
# told which.
onstart:
    migrate()
    pass_on_forced(workflow)


# "train" (the head on the base's features) or "finetune" (the top of the base and the head, on
# the activations at conv_base.split): the folder every training run writes to
STAGE = SETTINGS.stage


wildcard_constraints:
    repeat_dir=r"(repeat_\d+/)?",
    epoch=r"\d+",
    k=r"\d+",
    repeat=r"\d+",
    shard=r"\d+",
    view=r"\d+",
    # a run's fold (eval.folds): "" for one train/val split (and the refit head), _f{f} for fold f
    fold=r"(_f\d+)?",
    point=r"[^/]+",


def repeat_number(repeat_dir):
    return (
        0 if repeat_dir == "" else int(repeat_dir.removeprefix("repeat_").rstrip("/"))
    )


def manifest_seed(wildcards):
    return config["seed"] + repeat_number(wildcards.repeat_dir)


def run_outputs(mode):
    """A training job's named outputs: the files of its run folder."""
    return multiext(f"{MODES[mode].run_folder(STAGE)}/", **MODES[mode].run_files)


def cost_files(wildcards):
    """The benchmarks of every job the report's runs needed, for its account of their cost."""
    from augcache.report.costs import needed_benchmarks

    return needed_benchmarks(SETTINGS, EPOCH_GROUPS)


def train_params(mode):
    """What a training job's results depend on (see Settings.train_params), and its fold."""
    params = SETTINGS.train_params(mode, run_seed)
    return params | ({"fold": fold_param} if SETTINGS.folds else {})


def training_input(mode):
    """A training job's inputs, from what its mode reads: the stores of its kind (the epoch stores,
    the unaugmented store) and the manifests, or the pixels; always the validation store and the
    checked base with its files.
    """
    table = MODES[mode]

    def inputs(wildcards):
        files = {kinds.VAL.name: kinds.VAL.path}
        if (
            table.stored is not None
        ):  # the stores the run trains on, as its kind names them
            files.update(
                table.stored.run_inputs(
                    getattr(wildcards, "k", 0), SETTINGS.cache_repeat(wildcards.repeat)
                )
            )
        if table.manifests == "cached":
            files["manifests"] = cached_manifests(wildcards)
        if table.runs_base:
            files.update(pixel_input(wildcards))
        else:
            files["index"] = INDEX
        files.update(fold_input(wildcards))
        # every training job checks its stores' provenance against the base's files
        files.update(base_input(wildcards))
        return files

    return inputs


# head_sweep: {point name: its head config}; empty without a sweep
SWEEP_POINTS = sweep_points(config["head_sweep"], config["head"])


def each_fold(fold=...):
    """The folds of every repeat's runs: None (one train/val split), or 0..F-1 with eval.folds;
    [fold] where one is given (None: the head refit on every labelled image)."""
    if fold is not ...:
        return [fold]
    return list(range(SETTINGS.folds)) if SETTINGS.folds else [None]


def point_dirs(point, fold=...):
    """A sweep point's run folders, repeat 0 first: of each fold (eval.folds), or of `fold` (None:
    one train/val split, or the point's head refit on every labelled image)."""
    return [
        SWEEP_RUN.format(point=point, repeat=r, fold=fold_part(f))
        for r in SETTINGS.repeats()
        for f in each_fold(fold)
    ]


def candidate_dirs(fold=...):
    """{candidate: its run folders, repeat 0 first}: the sweep's points, or without a sweep the
    cached runs of K = cache.k; with eval.folds, those of each fold (fold ...), or those refit on
    every labelled image (fold None)."""
    if SWEEP_POINTS:
        return {point: point_dirs(point, fold) for point in SWEEP_POINTS}
    k = config["cache"]["k"]
    runs = [
        CACHE_MODE.run_dir(k, r, STAGE, f)
        for r in SETTINGS.repeats()
        for f in each_fold(fold)
    ]
    return {"head": runs}


def selection_candidates():
    """{candidate: the run folders that choose among the candidates}: each fold's with eval.folds."""
    return candidate_dirs()


def candidate_repeats():
    """{candidate: how many run folders it has}, for select_head, which reads the folders from its
    inputs (a variant's below its folder)."""
    return {point: len(dirs) for point, dirs in selection_candidates().items()}


def candidate_files(name):
    """A file of every run folder that chooses among the candidates."""
    return [f"{run}/{name}" for dirs in selection_candidates().values() for run in dirs]


def exported_files(name):
    """A file of each candidate's run the export may take: its repeat 0, or with eval.folds its
    head refit on every labelled image (repeat 0)."""
    dirs = candidate_dirs(None) if SETTINGS.folds else candidate_dirs()
    return [f"{runs[0]}/{name}" for runs in dirs.values()]


def refit_input(wildcards):
    """With eval.folds, the summary of each candidate's refit head (repeat 0), which the export takes."""
    return {"refit": exported_files("summary.json")} if SETTINGS.folds else {}


def point_head(wildcards):
    return SWEEP_POINTS[wildcards.point]


def swept_settings():
    """{point: the settings it sweeps}."""
    keys = list(config["head_sweep"])
    return {point: {k: head[k] for k in keys} for point, head in SWEEP_POINTS.items()}


def main_stores(wildcards):
    """The epoch stores of K = cache.k for repeat r (sweep points train on them; with eval.folds,
    the one cache's)."""
    return epoch_files(
        EPOCH_STORE, SETTINGS.cache_repeat(wildcards.repeat), config["cache"]["k"]
    )


def main_manifests(wildcards):
    return epoch_files(
        MANIFEST, SETTINGS.cache_repeat(wildcards.repeat), config["cache"]["k"]
    )


# variants: {name: its settings} (each validated and checked now, its errors naming it)
VARIANTS = {name: SETTINGS.variant(name) for name in config["variants"]}


def variant_run_dirs(name):
    """A variant's cached runs of K = its cache.k (what the report compares), repeat 0 first."""
    merged = VARIANTS[name]
    k = merged.config["cache"]["k"]
    prefix = VARIANT_PREFIX.format(name=name)
    return [
        f"{prefix}/{CACHE_MODE.run_dir(k, r, merged.stage)}" for r in SETTINGS.repeats()
    ]


def variant_summaries(wildcards):
    """Summaries of each variant's cached runs of K = its cache.k, for the report."""
    return {
        f"variant_{name}": [f"{d}/summary.json" for d in variant_run_dirs(name)]
        for name in VARIANTS
    }


def variant_files(name):
    """A file of each variant's runs the report compares (which the trackers log too)."""
    return [f"{d}/{name}" for v in VARIANTS for d in variant_run_dirs(v)]


def tracked_configs():
    """The settings the trackers log of each run, by variant ("": the main run's)."""
    sections = ("seed", "head", "cache", "augment", "conv_base", "eval")
    configs = {"": {key: config[key] for key in sections}}
    for name, merged in VARIANTS.items():
        configs[name] = {key: merged.config[key] for key in sections}
    return configs


def run_files(name):
    return [f"{d}/{name}" for d in SETTINGS.run_dirs()]


def epoch_files(pattern, repeat, k):
    """One file per cached epoch 0..k-1 of a repeat (its stores or its manifests)."""
    return [
        pattern.format(repeat_dir=repeat_prefix(repeat), epoch=e) for e in range(int(k))
    ]


def cached_stores(wildcards):
    return epoch_files(EPOCH_STORE, wildcards.repeat, wildcards.k)


def epoch_shards(pattern):
    """The shard files (stores or records, by pattern) an epoch store is merged from."""

    def files(wildcards):
        return [
            pattern.format(
                repeat_dir=wildcards.repeat_dir, epoch=wildcards.epoch, shard=s
            )
            for s in range(config["cache"]["shards_per_epoch"])
        ]

    return files


def group_filed(epochs):
    """(log, benchmark) of the job of these epochs (cache.epochs_per_job), filed as the table of
    jobs says (a job of one epoch as extract_epoch's)."""
    name, values = kinds.EPOCHS.group_job(epochs)
    return JOBS[name].log(**values), JOBS[name].benchmark(**values)


def cached_manifests(wildcards):
    """The manifests of a run's cached epochs: its repeat's (with eval.folds, the one cache's)."""
    return epoch_files(MANIFEST, SETTINGS.cache_repeat(wildcards.repeat), wildcards.k)


def fold_input(wildcards):
    """What a run adds with eval.folds: a fold's run, the folds of its repeat and the unaugmented
    store (it is scored on its fold's rows); the head refit on every labelled image, the metrics of
    the cached fold runs of K = cache.k (it trains for the head epochs they chose)."""
    if not SETTINGS.folds:
        return {}
    if wildcards.fold:
        return {
            "folds": FOLDS.format(repeat_dir=repeat_prefix(wildcards.repeat)),
            "fold_val": kinds.NOAUG.path,
        }
    k = config["cache"]["k"]
    runs = [
        CACHE_MODE.run_dir(k, r, STAGE, f)
        for r in SETTINGS.repeats()
        for f in each_fold()
    ]
    return {"fold_metrics": [f"{run}/metrics.csv" for run in runs]}


def sweep_fold_input(wildcards):
    """fold_input of a sweep point's run: its refit head's epochs are chosen by its own fold runs."""
    if not SETTINGS.folds or wildcards.fold:
        return fold_input(wildcards)
    runs = point_dirs(wildcards.point)
    return {"fold_metrics": [f"{run}/metrics.csv" for run in runs]}


def fold_param(wildcards):
    """The run's fold: None for one train/val split (or the refit head)."""
    return fold_of(wildcards.fold)


def run_seed(wildcards):
    return config["seed"] + int(wildcards.repeat)


def final_outputs():
    # the epoch stores too: one deleted after the merge is computed again (and merged again)
    # instead of leaving the merged store pointing at nothing
    outputs = [
        TRAIN_STORE,
        *expand(EPOCH_STORE, repeat_dir="", epoch=SETTINGS.epochs()),
        VAL_STORE,
        REPORT,
        MODEL,
        BASE_INFO,
    ]
    if config["predict"]["dir"]:
        outputs.append(PREDICTIONS)
    # every run's heads scored image by image (the paired comparisons), with any test-time views
    outputs.append(EVALUATION)
    outputs += [KNN] if SETTINGS.knn_params() else []
    if SETTINGS.has_test:
        outputs.append(TEST_SCORES)
    outputs += [TRACKED] if config["tracking"]["mlflow"] else []
    outputs += [TENSORBOARD] if config["tracking"]["tensorboard"] else []
    return outputs


def demo_images_input(wildcards):
    """The demo's images, when the data are the demo's (a variant's, below its folder)."""
    return {"images": DEMO_IMAGES} if SETTINGS.uses_demo_data else {}


def index_input(wildcards):
    """What the index is made from: the demo's images (or nothing: the user's data, named by
    params); with data.decode_shards > 1, the listed files and the bad files of each shard.
    """
    if SETTINGS.decode_shards == 1:
        return demo_images_input(wildcards)
    return demo_images_input(wildcards) | {
        "candidates": CANDIDATES,
        "listing_skipped": LISTING_SKIPPED,
        "shard_skipped": expand(
            PIXEL_SHARD_SKIPPED, shard=range(SETTINGS.decode_shards)
        ),
    }


def data_fingerprint(wildcards):
    """Changes when the user's images (or CSV listing) change, so the index is rebuilt: by path,
    size and modification time, or with data.fingerprint: content by path, size and bytes.

    A function of the index job, so the data are walked only when Snakemake plans that job (once
    per run, in the main process), not when a job process parses the workflow."""
    from augcache.data.listing import listing_fingerprint

    content = config["data"]["fingerprint"] == "content"
    test = listing_fingerprint(SETTINGS.test_dir, content) if SETTINGS.test_dir else ""
    if SETTINGS.uses_demo_data:
        return f"demo{test}"
    return f"{listing_fingerprint(SETTINGS.data_source(), content)}{test}"


def test_report_input(wildcards):
    return {"test": TEST_SCORES} if SETTINGS.has_test else {}


def evaluation_input(wildcards):
    """What the eval section adds to the report: the heads with test-time views, the k-NN."""
    files = {"evaluation": EVALUATION}
    return files | ({"knn": KNN} if SETTINGS.knn_params() else {})


def evaluation_folds(wildcards):
    """With eval.folds, what scores a fold's run: the folds of each repeat and the unaugmented store."""
    if not SETTINGS.folds:
        return {}
    folds = [FOLDS.format(repeat_dir=repeat_prefix(r)) for r in SETTINGS.repeats()]
    return {"folds": folds, "fold_val": kinds.NOAUG.path}


def knn_folds(wildcards):
    """With eval.folds, the folds of repeat 0, whose every fold the k-NN classifier scores."""
    return {"folds": FOLDS.format(repeat_dir="")} if SETTINGS.folds else {}


def tracked_manifests():
    """The manifests the runs read, whose hashes tag them in the tracker: of each repeat's
    cache (with eval.folds, the one cache) up to the largest K, and each variant's up to its
    cache.k."""
    caches = sorted({SETTINGS.cache_repeat(r) for r in SETTINGS.repeats()})
    epochs = range(max(SETTINGS.k_values()))
    manifests = [
        MANIFEST.format(repeat_dir=repeat_prefix(r), epoch=e)
        for r in caches
        for e in epochs
    ]
    for name, merged in VARIANTS.items():
        prefix = VARIANT_PREFIX.format(name=name)
        manifests += [
            f"{prefix}/{MANIFEST.format(repeat_dir=repeat_prefix(r), epoch=e)}"
            for r in SETTINGS.repeats()
            for e in range(merged.config["cache"]["k"])
        ]
    return manifests


def evaluated_runs():
    """Every run folder whose heads are scored with the test-time views: the modes' runs and
    the sweep's points."""
    points = [d for point in SWEEP_POINTS for d in point_dirs(point)]
    return SETTINGS.run_dirs() + points


def evaluated_files(name):
    return [f"{run}/{name}" for run in evaluated_runs()]


def test_params():
    """data.test_dir for the index job, when set (so a config without it keeps its params)."""
    return {"test_dir": SETTINGS.test_dir} if SETTINGS.test_dir else {}


def export_outputs():
    """The exported model and its classes, and the TensorFlow SavedModel where the run's backend
    is TensorFlow (the only one that writes it)."""
    outputs = {"model": MODEL, "classes": MODEL_CLASSES, "val_scores": VAL_SCORES}
    if SETTINGS.backend == backend.TENSORFLOW:
        outputs["saved_model"] = directory(SAVED_MODEL)
    return outputs


def index_outputs():
    """The index step's outputs: the index, the skipped files and, with data.pixel_store, the
    pixels of every indexed image."""
    outputs = {"index": INDEX, "skipped": SKIPPED}
    if SETTINGS.pixel_store and SETTINGS.decode_shards == 1:
        outputs["pixels"] = PIXELS
    return outputs


def index_pixel_params():
    """What the pixels the index step stores depend on (nothing when it stores none)."""
    if "pixels" not in index_outputs():
        return {}
    return SETTINGS.pixel_params()


def pixel_shards(wildcards):
    """The shard stores the pixel store is merged from."""
    return expand(PIXEL_SHARD, shard=range(SETTINGS.decode_shards))


def pixel_input(wildcards):
    """What a job that reads pixels needs: the index and, with data.pixel_store, the pixel store."""
    inputs = {"index": INDEX}
    if SETTINGS.pixel_store:
        inputs["pixels"] = PIXELS
    return inputs


def base_files(wildcards):
    """Files the conv base is made from (the demo base, fetched weights and a local keras-hub
    preset's files included), so that replacing one rebuilds it."""
    spec = SETTINGS.base_spec()
    return list(spec.files.values()) + preset_files(spec.preset)


def base_input(wildcards):
    """What a job running the conv base needs: the checked base description, and the files the
    base is made from, which the job reads (a variant's job its own, below its folder).
    """
    return {"base": SETTINGS.base_check_record(), "base_files": base_files(wildcards)}
