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
