"""The kinds of feature stores, each an object that says what it is and what it takes: the rule
inputs of a run that trains on it, the jobs that make it, the store files a run writes of it, and
how training opens it. The modes, the rules, the cost account, the disk plan and training loop
over this table (:data:`KINDS`) and ask the kind; none branches on which kind it is.

Plain values and patterns when imported (no TensorFlow, no HDF5), so the workflow's rule files can
read it when they are parsed. A mode names the kind its training features come from
(:attr:`augcache.training.modes.Mode.stored`); the validation store serves every run.

Adding a kind: a subclass (or an instance of one below) in :data:`KINDS`, with its path in
:mod:`augcache.core.paths`, and the job that writes it (a rule in ``workflow/rules/``, an entry in
:data:`augcache.jobs.table.JOBS`).
"""

from __future__ import annotations

from dataclasses import dataclass

from augcache.core import paths


@dataclass(frozen=True)
class RunPlan:
    """What decides which stores of each kind a config's run writes: K (the largest of the sweep),
    the repeats, K of the main run (cache.k), the kinds its training modes train on, whether the k-NN classifier runs, the
    test-time views, whether the run is a variant's (which writes only what its cached runs
    read), and eval.folds (whose runs are scored on the unaugmented store)."""

    k: int
    repeats: int
    k_main: int = 0
    trained: frozenset = frozenset()
    knn: bool = False
    views: int = 0
    variant: bool = False
    folds: int = 0
    # (images, their ids' characters) of every labelled image, train and val (eval.folds)
    labelled: tuple = (0, 0)


@dataclass(frozen=True)
class Extraction:
    """How the jobs that make the stores are cut: cache.shards_per_epoch, the epochs of each
    extraction job (cache.epochs_per_job; empty: one job per epoch), eval.tta_views."""

    shards: int = 1
    groups: tuple = ()
    views: int = 0


@dataclass(frozen=True)
class StoredKind:
    """One kind of feature store.

    name: how the code and the logs call it.
    path: the store's path, or its pattern ({repeat_dir} and {epoch} for epoch stores, {view} for a
        test-time view).
    split: whose images it holds ("train" or "val").
    augmented: its rows are augmented by a manifest's numbers.
    job: the job (:data:`augcache.jobs.table.JOBS`) that writes it, for a kind made by one job.
    """

    name: str
    path: str
    split: str
    augmented: bool
    job: str | None = None

    # --- what a training run of a mode reading this kind needs and opens -----------------------

    def run_inputs(self, k, repeat) -> dict:
        """The training rule's inputs for this kind's stores, by name: ``stores``, the stores the
        run trains on, in order."""
        return {"stores": [self.path]}

    def open(self, stores, manifests, expected: dict, seed: int, rows_per_block: int | None, keep=None):
        """The run's training features from its stores (:mod:`augcache.training.train`): checked
        against `expected` (provenance fields), streamed in blocks of rows_per_block rows when
        given; keep: None, or keep(sample ids) -> the rows that train (a fold's run, eval.folds)."""
        raise ValueError(f"the {self.name} store is not one a head trains on")

    # --- what makes it, and what a run writes of it -----------------------------------------------

    def jobs(self, k: int, repeat: int, extraction: Extraction = Extraction()) -> list[tuple[str, dict]]:
        """(job name, the values of its name's fields) of every job that makes the stores a run
        of K epochs and this repeat reads."""
        return [(self.job, {})] if self.job else []

    def files(self, plan: RunPlan) -> list[str]:
        """The store files of this kind a run of this plan writes."""
        return [self.path]

    def planned(self, plan: RunPlan, n: int, id_chars: int, row_bytes: int, store_bytes) -> list[tuple[str, int, int]]:
        """(path, rows, bytes) of every store file of this kind a run of this plan writes: n images of
        its split, their ids' characters, row_bytes per stored row; store_bytes(rows, row_bytes,
        id_chars, **layout) counts a store's bytes (:func:`augcache.jobs.plan.store_bytes`)."""
        return [(path, n, store_bytes(n, row_bytes, id_chars)) for path in self.files(plan)]


@dataclass(frozen=True)
class EpochStores(StoredKind):
    """K stores, one per cached epoch (and repeat), each the training images augmented by its
    manifest; a run reads K of them in turn."""

    def run_inputs(self, k, repeat) -> dict:
        return {"stores": [self.path.format(repeat_dir=paths.repeat_prefix(repeat), epoch=e) for e in range(int(k))]}

    def open(self, stores, manifests, expected, seed, rows_per_block, keep=None):
        from augcache.training.train import CachedEpochs, StreamedEpochs

        if rows_per_block:
            return StreamedEpochs(stores, manifests, expected, rows_per_block, keep)
        return CachedEpochs(stores, manifests, expected, keep)

    def jobs(self, k, repeat, extraction=Extraction()):
        prefix, shards, groups = paths.repeat_prefix(repeat), extraction.shards, extraction.groups
        if shards > 1:
            return [job for e in range(k) for job in
                    [("extract_shard", {"repeat_dir": prefix, "epoch": e, "shard": s}) for s in range(shards)]
                    + [("merge_shards", {"repeat_dir": prefix, "epoch": e})]]
        needed = [g for g in groups or [[e] for e in range(k)] if g[0] < k]
        return [(name, {"repeat_dir": prefix, **values}) for name, values in map(self.group_job, needed)]

    @staticmethod
    def group_job(epochs) -> tuple[str, dict]:
        """The job (name in the table of jobs, its name's fields) a job of these consecutive epochs
        is filed as: a job of one epoch as extract_epoch (whichever rule runs it), of several as
        extract_epochs."""
        if len(epochs) == 1:
            return "extract_epoch", {"epoch": epochs[0]}
        return "extract_epochs", {"first": epochs[0], "last": epochs[-1]}

    def files(self, plan):
        return [paths.epoch_store(r, e) for r in range(plan.repeats) for e in range(plan.k)]


@dataclass(frozen=True)
class UnaugmentedStore(StoredKind):
    """One store of the images as they are, read whole every head epoch in a seeded order."""

    def open(self, stores, manifests, expected, seed, rows_per_block, keep=None):
        from augcache.training.train import ShuffledStore

        (store,) = stores
        return ShuffledStore(store, expected, seed, rows_per_block, keep)

    def files(self, plan):
        return [self.path] if not plan.variant and (self in plan.trained or plan.knn or plan.folds) else []


@dataclass(frozen=True)
class ValidationStore(StoredKind):
    """The validation images as they are: every run scores on it."""


@dataclass(frozen=True)
class MergedEpochs(StoredKind):
    """Repeat 0's K epoch stores as one store whose rows refer to theirs (for reading the cache
    whole): its rows hold ids and references, no features."""

    def files(self, plan):
        return [] if plan.variant else [self.path]

    def planned(self, plan, n, id_chars, row_bytes, store_bytes):
        k = plan.k_main
        size = k * store_bytes(n, 0, id_chars, chunk=1, labels=False) + 8 * k * n
        return [(path, k * n, size) for path in self.files(plan)]


@dataclass(frozen=True)
class ViewStores(StoredKind):
    """eval.tta_views: one store per test-time view ({view}) of the validation images, each
    augmented by its view's manifest, rows as the validation store's."""

    def jobs(self, k, repeat, extraction=Extraction()):
        return [job for v in range(extraction.views) for job in
                [("write_view_manifest", {"view": v}), ("extract_view", {"view": v})]]

    def files(self, plan):
        return [] if plan.variant else [self.path.format(view=v) for v in range(plan.views)]

    def planned(self, plan, n, id_chars, row_bytes, store_bytes):
        # with eval.folds the views are of every labelled image
        n, id_chars = plan.labelled if plan.folds else (n, id_chars)
        return super().planned(plan, n, id_chars, row_bytes, store_bytes)


EPOCHS = EpochStores("epochs", paths.EPOCH_STORE, "train", augmented=True, job="extract_epoch")
NOAUG = UnaugmentedStore("noaug", paths.NOAUG_STORE, "train", augmented=False, job="extract_noaug")
VAL = ValidationStore("val", paths.VAL_STORE, "val", augmented=False, job="extract_val")
MERGED = MergedEpochs("merged", paths.TRAIN_STORE, "train", augmented=True, job="merge_epochs")
TTA = ViewStores("tta", paths.TTA_STORE, "val", augmented=True, job="extract_view")

# in the order a run writes them (the disk plan lists them so)
KINDS = {kind.name: kind for kind in (EPOCHS, MERGED, VAL, NOAUG, TTA)}
