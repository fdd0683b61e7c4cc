"""The training modes: what each one is, in one table read by the package, the rules and the report.

Plain values only (no TensorFlow), so the workflow's rule files can read it when they are parsed.
"""

from __future__ import annotations

from dataclasses import dataclass

from augcache.training.kinds import EPOCHS, KINDS, NOAUG, StoredKind


# What the training jobs do, which names the folder they write to (results/<stage>/): train the
# head on the base's features, or fine-tune the layers after conv_base.split with the head.
TRAIN, FINETUNE = "train", "finetune"
STAGES = (TRAIN, FINETUNE)


@dataclass(frozen=True)
class Mode:
    """One way of feeding the head its training features.

    uses_k: a run trains on K cached epochs (its folder and label name K).
    runs_base: the conv base runs inside training (on a GPU when there is one).
    stored: the kind of store the run's training features come from (:mod:`augcache.training.kinds`):
        EPOCHS (K epoch stores), NOAUG (the unaugmented store), or None for a mode that runs the
        base and computes them during training. A kind outside the table is refused by name.
    manifests: whose augmentation numbers a run uses: "cached" (the K written manifests),
        "fresh" (drawn anew every head epoch) or None (no augmentation).
    feature_augment: the head's training features are transformed every head epoch by seeded
        feature transforms (:mod:`augcache.augmentation.feature_augment`), whose numbers the run writes.
    sweeps_k: a mode that uses K runs for every K of the sweep; otherwise for K = cache.k only.
    checks: the mode whose main run (K = cache.k, repeat 0) this one must reproduce; it runs
        that once, and the report states the largest difference.
    always: runs whatever train.modes says (the exported head and the K sweep come from it).
    speed_baseline: the report's speedups are this mode's seconds divided by each mode's.
    side_by_side: its row in the report's side-by-side table, which goes from no augmentation to
        the most expensive; None for a mode that checks another (it has a section of its own).

    Everything else follows from these: the runs a config asks for (:meth:`runs`), each training
    rule's inputs and resources, the stores a run writes, the report's rows, curves and baselines.
    """

    name: str
    title: str
    uses_k: bool
    runs_base: bool
    stored: StoredKind | None
    manifests: str | None
    feature_augment: bool = False
    sweeps_k: bool = True
    checks: str | None = None
    always: bool = False
    speed_baseline: bool = False
    side_by_side: int | None = None

    def __post_init__(self):
        if self.stored is not None and self.stored not in KINDS.values():
            raise ValueError(f"mode {self.name}: {self.stored.name!r} is no kind of store of the table "
                             f"(one of {', '.join(KINDS)}, augcache/training/kinds.py)")
        if self.stored is None and not self.runs_base:
            raise ValueError(f"mode {self.name}: it reads no stored kind, so it must run the base")

    def run_folder(self, stage: str = TRAIN) -> str:
        """Path pattern of a run's folder in a stage (see :func:`stage`), with {k} (when the mode
        uses K), {repeat} the repeat number and {fold} (see :func:`fold_part`)."""
        return f"results/{stage}/{self.name}/{self.run_name}"

    @property
    def run_name(self) -> str:
        """A run's folder in the mode's: with {k} (when the mode uses K), {repeat} and {fold}."""
        return "k{k}_r{repeat}{fold}" if self.uses_k else "r{repeat}{fold}"

    def run_dir(self, k: int, repeat: int, stage: str = TRAIN, fold: int | None = None) -> str:
        return self.run_folder(stage).format(k=k, repeat=repeat, fold=fold_part(fold))

    def runs(self, k_values, k_main: int, repeats, folds: int = 0) -> list[tuple[int, int, int | None]]:
        """(K, repeat, fold) of every run of this mode: the main run only for a check (with folds,
        its fold 0), every K (or K = k_main without sweeps_k) and repeat for a mode that uses K,
        every repeat (K 0) otherwise; each of them for every fold 0..folds-1 (fold None without)."""
        each_fold = list(range(folds)) if folds else [None]
        if self.checks:
            return [(k_main, 0, each_fold[0])]
        if self.uses_k and not self.sweeps_k:
            k_values = [k_main]
        return [(k if self.uses_k else 0, r, f) for k in (k_values if self.uses_k else [0]) for r in repeats
                for f in each_fold]

    @property
    def run_files(self) -> dict[str, str]:
        """A run's files, as named outputs of its training job: RUN_FILES, and the feature
        transforms drawn for a mode that augments features."""
        return {**RUN_FILES, **({"feature_params": FEATURE_PARAMS_FILE} if self.feature_augment else {})}

    def label(self, k: int, repeat: int, fold: int | None = None) -> str:
        """How progress output names a run."""
        name = f"{self.name} K={k} repeat {repeat}" if self.uses_k else f"{self.name} repeat {repeat}"
        return name if fold is None else f"{name} fold {fold}"


MODES = {
    mode.name: mode
    for mode in (
        Mode("cached", "cached (augmentation cache)", uses_k=True, runs_base=False, stored=EPOCHS,
             manifests="cached", always=True, side_by_side=2),
        Mode("hybrid", "hybrid (cached K epochs + feature augmentation)", uses_k=True, runs_base=False,
             stored=EPOCHS, manifests="cached", feature_augment=True, sweeps_k=False, side_by_side=3),
        Mode("replay", "replay (on the fly, manifest numbers)", uses_k=True, runs_base=True, stored=None,
             manifests="cached", checks="cached"),
        Mode("onthefly", "on the fly (fresh numbers every epoch)", uses_k=False, runs_base=True,
             stored=None, manifests="fresh", speed_baseline=True, side_by_side=4),
        Mode("noaug", "no augmentation", uses_k=False, runs_base=False, stored=NOAUG, manifests=None, side_by_side=0),
        Mode("featureaug", "feature augmentation (unaugmented features)", uses_k=False, runs_base=False,
             stored=NOAUG, manifests=None, feature_augment=True, side_by_side=1),
    )
}

# The mode whose K cached epochs every cached run trains on, and the one speedups are measured against.
CACHE_MODE = MODES["cached"]
SPEED_BASELINE = next(m for m in MODES.values() if m.speed_baseline)
# The mode without augmentation of any kind, the report's reference for what augmentation buys.
PLAIN_MODE = next(m for m in MODES.values() if m.manifests is None and not m.feature_augment and m.checks is None)
# The side-by-side table's modes, in its order.
SIDE_BY_SIDE = tuple(sorted((m for m in MODES.values() if m.side_by_side is not None), key=lambda m: m.side_by_side))

# A run's files, as named outputs of its training job.
RUN_FILES = {"head": "head.keras", "best_head": "best_head.keras", "metrics": "metrics.csv",
             "summary": "summary.json"}
# the feature transforms a run drew, one row per head epoch and feed position
FEATURE_PARAMS_FILE = "feature_augment.csv.gz"


def fold_part(fold: int | None) -> str:
    """The {fold} part of a run's folder name: "" for a run of one train/val split (or the head
    refit on every labelled image), "_f{fold}" for fold `fold` of eval.folds."""
    return "" if fold is None else f"_f{int(fold)}"


def fold_of(part: str) -> int | None:
    """The fold a run folder's {fold} part names (see :func:`fold_part`)."""
    return int(part.removeprefix("_f")) if part else None


def mode(name: str) -> Mode:
    """The mode called name; a clear error for any other."""
    try:
        return MODES[name]
    except KeyError:
        raise ValueError(f"train.modes: unknown mode {name!r} (one of {', '.join(MODES)})") from None


def stage(config: dict) -> str:
    """The stage of a config's training jobs: FINETUNE with conv_base.split, else TRAIN."""
    return FINETUNE if config["conv_base"].get("split") else TRAIN
