"""Where the workflow writes: the path pattern of every output, relative to the working directory.

Read by the rule files (``workflow/rules/common.smk``) and by the package where it needs a path
the workflow chose (the storage estimate). Wildcards in braces: {repeat_dir} is "" for repeat 0 (seed)
and "repeat_{r}/" for repeat r (seed + r); {repeat} is the number r itself.
"""

DEMO_IMAGES = "results/demo/images"
DEMO_BASE = "results/demo/base.keras"
# conv_base.weights: imagenet, downloaded once by the workflow for every job to load
FETCHED_WEIGHTS = "results/base/{architecture}_imagenet.weights.h5"
INDEX = "results/dataset/index.csv"
SKIPPED = "results/dataset/skipped.csv"
PIXELS = "results/dataset/pixels.h5"
# With data.decode_shards > 1: the listed files and the problems found listing them; each shard's
# pixels and bad files (the index is made from the lists, the pixel store merged from the shards,
# and these are deleted once both are made).
CANDIDATES = "results/dataset/listed/candidates.csv"
LISTING_SKIPPED = "results/dataset/listed/skipped.csv"
PIXEL_SHARD = "results/dataset/pixels/shard_{shard}.h5"
PIXEL_SHARD_SKIPPED = "results/dataset/pixels/shard_{shard}.skipped.csv"
# {repeat_dir} is "" for repeat 0 (seed) and "repeat_{r}/" for repeat r (seed + r); {repeat} is the number r itself.
MANIFEST = "results/{repeat_dir}manifest/epoch_{epoch}.csv"
EPOCH_STORE = "results/{repeat_dir}features/train/epoch_{epoch}.h5"
# eval.folds: which fold each labelled image is in, for repeat r (augcache.data.folds)
FOLDS = "results/{repeat_dir}manifest/folds.csv"
# With cache.shards_per_epoch > 1, an epoch store is merged from these (deleted once merged).
SHARD_STORE = "results/{repeat_dir}features/train/epoch_{epoch}/shard_{shard}.h5"
# beside each shard store, its job's record: the epoch's key, and what the shard cost (see augcache.jobs.sharded)
SHARD_RECORD = "results/{repeat_dir}features/train/epoch_{epoch}/shard_{shard}.json"
TRAIN_STORE = "results/features/train.h5"
VAL_STORE = "results/features/val.h5"
NOAUG_STORE = "results/features/train_noaug.h5"
# eval.tta_views: test-time view v of the validation images, its manifest and its store
TTA_MANIFEST = "results/manifest/val_tta/view_{view}.csv"
TTA_STORE = "results/features/val_tta/view_{view}.h5"
# every run's heads scored on the validation store (with test-time views), and the k-NN classifier
EVALUATION = "results/eval/heads.json"
KNN = "results/eval/knn.json"
MODEL = "results/model/model.keras"
MODEL_CLASSES = "results/model/classes.json"
# The exported head's per-class recall and confusion matrix on the validation store
VAL_SCORES = "results/model/val_scores.json"
# The exported model scored on the test images (data.test_dir, or a CSV's test rows)
TEST_SCORES = "results/model/test_scores.json"
SAVED_MODEL = "results/model/saved_model"
PREDICTIONS = "results/predict/predictions.csv"
REPORT = "results/report/report.html"
# tracking.mlflow: what the tracking job logged (or why it could not)
TRACKED = "results/tracking/mlflow.json"
# tracking.tensorboard: every run's curves as TensorBoard logs below TENSORBOARD_DIR, and what was written
TENSORBOARD_DIR = "results/tracking/tensorboard"
TENSORBOARD = "results/tracking/tensorboard.json"
BASE_INFO = "results/base/base.json"
# What the base check writes, one file per checked setting ({key}: a hash of the check's params),
# so a check that fails (a typo) never replaces the record of the good one; BASE_INFO is a copy.
CHECKED_BASE = "results/base/checked/{key}.json"
# The outputs of every heavy job under the key of what made them (see augcache.jobs.reuse); earlier
# versions kept them in FORMER_REUSE, which augcache.jobs.gc.migrate moves here.
REUSE = "results/reuse"
FORMER_REUSE = "results/cache"
# files' sha256, remembered by path, size, times and inode (see augcache.core.provenance.file_sha256)
HASH_MEMO = f"{REUSE}/.sha256"
LOGS = "results/logs"
# Snakemake's benchmark of every job (wall seconds, max RSS), filed like its log (augcache.jobs.table).
# The report's times come from them.
BENCHMARKS = "results/benchmarks"
# variants: each variant's outputs are this layout below its folder
VARIANT_PREFIX = "results/variants/{name}"
# head_sweep: one folder per point and repeat, and the choice of the exported head
SWEEP_RUN = "results/sweep/{point}/r{repeat}{fold}"
SELECTION = "results/sweep/selection.json"
SWEEP_TABLE = "results/sweep/sweep.csv"

__all__ = [name for name in dir() if name.isupper()]


def fetched_weights(architecture: str) -> str:
    """Where the ImageNet weights of an architecture are kept once fetched (a base given as a file
    path, which fetches nothing, still gets a plain file name)."""
    import re

    return FETCHED_WEIGHTS.format(architecture=re.sub(r"[^\w.-]", "_", architecture))


def base_with_files(base: dict) -> dict:
    """A base's settings as rule params name them (``architecture: demo``, ``weights: imagenet``:
    the config's words, never a path the workflow writes, which a variant would not rewrite) with
    the workflow's own files in their place: the demo base file, the fetched ImageNet weights.
    A job reads those files from its inputs (:meth:`augcache.base.conv_base.BaseSpec.located`)."""
    base = dict(base)
    if base["architecture"] == "demo":
        base["architecture"] = DEMO_BASE
    elif base.get("weights") == "imagenet":
        base["weights"] = fetched_weights(base["architecture"])
    return base


def epoch_store(repeat: int, epoch: int) -> str:
    """The store of one cached epoch of one repeat."""
    return EPOCH_STORE.format(repeat_dir=repeat_prefix(repeat), epoch=epoch)


def repeat_prefix(repeat: int) -> str:
    """Path prefix of a repeat's manifests and features."""
    return "" if int(repeat) == 0 else f"repeat_{int(repeat)}/"


def below_results(path) -> str | None:
    """A path's part below its first results/ folder (a variant's keeps its variants/<name>/results/
    prefix), None for a path outside results/ or results/ itself."""
    from pathlib import PurePath

    parts = PurePath(path).parts
    return "/".join(parts[parts.index("results") + 1:]) or None if "results" in parts else None


# What each output is: the reference of the outputs (docs/reference/outputs.md) is written from
# this table, in its order. {path pattern: what the file or folder holds}; every path above has a
# row ({e}: a cached epoch, {r}: a repeat, {v}: a test-time view).
OUTPUTS = {
    INDEX: "sample id, path, label, class number, split of every image",
    SKIPPED: "files left out by `data.on_bad_image: skip`, with the reason",
    PIXELS: "the pixel store: every indexed image decoded and resized once, `pixels` (n, H, W, 3) uint8 and "
            "`sample_ids`, read by every extraction (`data.pixel_store`)",
    CANDIDATES: "with `data.decode_shards` > 1: the files listed for the shard jobs (deleted once the index and "
                "the pixel store are made)",
    LISTING_SKIPPED: "with `data.decode_shards` > 1: the problems found while listing (deleted with the list)",
    PIXEL_SHARD: "with `data.decode_shards` > 1: one shard job's pixels (deleted once merged into the pixel store)",
    PIXEL_SHARD_SKIPPED: "with `data.decode_shards` > 1: one shard job's bad files (deleted once the index is made)",
    DEMO_IMAGES: "the built-in demo's images (`data.dir: demo`)",
    DEMO_BASE: "the built-in demo's conv base, trained on a pretext task (`conv_base.architecture: demo`)",
    FETCHED_WEIGHTS: "with `conv_base.weights: imagenet`: the ImageNet weights, downloaded once for every job to load",
    BASE_INFO: "the conv base as built: weights sha256, feature shape, parameter count, bytes per sample-epoch, "
               "and `storage`: the size of every store the run writes (see Stores and disk)",
    CHECKED_BASE: "what one check of the base found, under a hash of the check's settings (base.json is a copy; "
                  "a failed check of another setting never replaces it)",
    MANIFEST: "epoch e of repeat r: every training sample in shuffle order (`position`) with its concrete "
              "augmentation (rotation, shifts, shear, zoom, flips, brightness, channel shift, crop box, contrast, "
              "saturation, hue, erased box); `{repeat_dir}` is empty for repeat 0 and `repeat_{r}/` for repeat r "
              "(seed + r)",
    FOLDS: "with `eval.folds`: the fold of every labelled image, for repeat r's split",
    EPOCH_STORE: "conv features of epoch e's augmented images, in manifest order: `features`, `labels`, `sample_ids`",
    SHARD_STORE: "with `cache.shards_per_epoch` > 1: one shard job's slice of an epoch (deleted once merged)",
    SHARD_RECORD: "beside each shard store: its job's record, the epoch's key and what the shard cost",
    TRAIN_STORE: "one store over the K epochs: `features` (K, n, …) as an HDF5 virtual dataset over the epoch "
                 "files, `labels` and `sample_ids` (K, n)",
    VAL_STORE: "conv features of the validation images, unaugmented",
    NOAUG_STORE: "features of the unaugmented training images (the `noaug` baseline)",
    TTA_MANIFEST: "with `eval.tta_views`: the numbers of test-time view v of the validation images",
    TTA_STORE: "with `eval.tta_views`: the features of test-time view v (rows in the order of `val.h5`)",
    "results/train/{mode}/{run}/": "`head.keras` (after the last epoch), `best_head.keras` (at the best epoch, "
                                   "`head.select_on`), `metrics.csv` (epoch, loss, accuracy, val_loss, val_accuracy, "
                                   "seconds, conv_seconds) and `summary.json` of one training run; `{run}` is "
                                   "`k{K}_r{r}` for `cached`, `hybrid` and `replay`, `r{r}` for `onthefly`, `noaug` "
                                   "and `featureaug`, with `_f{f}` for fold f of `eval.folds`",
    "results/finetune/{mode}/{run}/": "the same files when `conv_base.split` is set (instead of `results/train/`): "
                                      "`head.keras` and `best_head.keras` hold the fine-tuned top and the head "
                                      "(activations at the split → class probabilities); `metrics.csv` has the head "
                                      "epochs, then the fine-tuning epochs",
    SWEEP_RUN: "with `head_sweep`: the run folder of one point, repeat and fold (the files of a training run)",
    SELECTION: "with `head_sweep`: the chosen point, its epoch, and why",
    SWEEP_TABLE: "with `head_sweep`: every point, in the order of the selection rule",
    MODEL: "conv base + the chosen head at its best epoch (the best `head_sweep` point, or the cached run of "
           "K = `cache.k`, repeat 0) as one model taking raw images (float32 pixels in [0, 255] at `image_size`), "
           "built from Keras' own layers only (the base's `preprocess_input` becomes a fixed Dense layer on the "
           "channels), so plain `keras.saving.load_model` opens it without this package",
    MODEL_CLASSES: "class names, input size, resize policy, pixel size, the test-time augmentation, and which head "
                   "was exported (point, epoch, why)",
    SAVED_MODEL: "the exported model as a TensorFlow SavedModel for serving (`serve` signature)",
    VAL_SCORES: "the exported head on the validation features: accuracy, macro-averaged accuracy, each class's "
                "recall and count, the confusion matrix",
    TEST_SCORES: "with `data.test_dir` (or a CSV's `test` rows): the same for the exported model on the test "
                 "images, computed once (with `eval.tta_views`, also with the test-time views)",
    EVALUATION: "every run's final and best head on the validation features: accuracy and macro-averaged "
                "accuracy, and which images it got right (the report's paired comparisons read them); with "
                "`eval.tta_views`, also averaged over the views",
    KNN: "with `eval.knn`: the k-NN classifier's validation accuracy with each bank, its seconds and its "
         "bank's size",
    PREDICTIONS: "path, label, probability of every image under `predict.dir` (when set)",
    REPORT: "the report: one self-contained file, plots embedded",
    TRACKED: "with `tracking.mlflow`: the MLflow runs logged (or why none could be)",
    TENSORBOARD_DIR: "with `tracking.tensorboard`: every run's curves as TensorBoard logs, at the run's own path",
    TENSORBOARD: "with `tracking.tensorboard`: the runs whose logs were written",
    VARIANT_PREFIX: "with `variants`: the same layout for each variant of the cache, below `results/` in this "
                    "folder (its own manifests, stores and runs)",
    LOGS: "one log per job, with progress lines for extraction and training",
    BENCHMARKS: "Snakemake's benchmark of every job, beside its log (`.tsv`: wall seconds, peak memory), which "
                "the report's end-to-end times add up; `.reused.json` beside a job's benchmark when its last run "
                "put outputs computed before in place (what computing them took)",
    REUSE: "the outputs of every heavy job, kept under the key of what made them "
           "(`<script>/<key>/`, each under its file name, beside `entry.json`), reused instead of computed again "
           "(see Reuse)",
    HASH_MEMO: "files' sha256, remembered by path, size, times and inode",
    FORMER_REUSE: "where versions before kept the reused outputs; moved to `results/reuse` when a run starts",
}
