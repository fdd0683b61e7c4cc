"""What each training run cost end to end: the seconds of every job it needed, added up.

Every job records what its last run cost by its own process clock (``X.cost.json`` beside its
benchmark, filed as the table of jobs says, :mod:`augcache.jobs.table`: wall seconds from its process's start, Python and
TensorFlow included, when it started and ended); peak memory comes from Snakemake's benchmark. A
run needed: the base check (and the demo base or the ImageNet weights), the validation store and
its own training job; a cached run also its K epoch stores and manifests, a replay run the
manifests, a ``noaug`` run the unaugmented store. The index and the pixel store serve every mode;
they are shown apart. A job whose outputs were reused (see :mod:`augcache.jobs.reuse`) counts what
computing them took, kept with the entry by the same clock (its record beside the benchmark,
``X.reused.json``, says so); the report also names every job that was reused in its last run
(the test-time views, the export and the sweep's points among them) and what those runs took.

Job seconds added up are not wall-clock time: jobs run side by side. :attr:`Account.wall_seconds`
is the wall-clock time during which at least one job's last run was running.

The extraction jobs are those of today's plan (the epochs of each job, from cache.epochs_per_job),
never guessed from benchmark files that an earlier plan left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from augcache.core.paths import repeat_prefix
from augcache.jobs.table import JOBS, cost_record, reuse_record
from augcache.training.kinds import EPOCHS, NOAUG, TTA, VAL, Extraction
from augcache.training.modes import MODES, fold_part


def _bench(name: str, **values) -> str:
    """The benchmark of job `name` of the table of jobs, its name's fields filled with values."""
    return JOBS[name].benchmark(**values)


def _made_by(kind, k: int, repeat: int, extraction: Extraction) -> list[str]:
    """Benchmarks of the jobs that make the stores of `kind` a run of K epochs reads."""
    return [_bench(name, **values) for name, values in kind.jobs(k, repeat, extraction)]


def extraction(settings, groups) -> Extraction:
    """How the config cuts its extraction jobs; groups: the epochs of each (Settings.epoch_groups)."""
    evaluation = settings.config.get("eval") or {}  # a config of an earlier version may lack it
    return Extraction(shards=settings.config["cache"]["shards_per_epoch"], groups=tuple(map(tuple, groups)),
                      views=int(evaluation.get("tta_views") or 0))


def data_jobs(settings) -> list[str]:
    """Benchmarks of the jobs every mode shares: the demo images, the index and the pixel store."""
    jobs = [_bench("make_demo_data")] if settings.uses_demo_data else []
    jobs.append(_bench("index_dataset"))
    if settings.decode_shards > 1:
        jobs.append(_bench("list_dataset"))
        jobs += [_bench("decode_pixels", shard=s) for s in range(settings.decode_shards)]
        jobs.append(_bench("merge_pixels"))
    return jobs


def base_jobs(settings) -> list[str]:
    """Benchmarks of the jobs that make and check the base, which every run needs."""
    jobs = [_bench("make_demo_base")] if settings.uses_demo_base else []
    if settings.fetches_weights:
        jobs.append(_bench("fetch_weights"))
    return jobs + [_bench("check_conv_base", key=settings.base_check_key())]


def manifest_jobs(repeat: int, k: int) -> list[str]:
    """Benchmarks of the jobs that wrote a repeat's first k manifests."""
    return [_bench("write_manifest", repeat_dir=repeat_prefix(repeat), epoch=e) for e in range(k)]


def run_jobs(settings, mode: str, k: int, repeat: int, groups, fold: int | None = None) -> list[str]:
    """Benchmarks of every job one training run needed, the data jobs left out: the base, the
    validation store, the manifests its mode reads, the stores of its kind, its own job; a fold's
    run (eval.folds) also its repeat's folds and the unaugmented store it is scored on."""
    table, cut = MODES[mode], extraction(settings, groups)
    cache = settings.cache_repeat(repeat)
    jobs = base_jobs(settings) + _made_by(VAL, k, cache, cut)
    if table.manifests == "cached":
        jobs += manifest_jobs(cache, k)
    if table.stored is not None:
        jobs += _made_by(table.stored, k, cache, cut)
    if fold is not None:
        jobs += [_bench("write_folds", repeat_dir=repeat_prefix(repeat)), *_made_by(NOAUG, k, cache, cut)]
    run = table.run_name.format(k=k, repeat=repeat, fold=fold_part(fold))
    # each job once (a mode trained on the unaugmented store is scored on it too)
    return list(dict.fromkeys([*jobs, _bench("train", stage=settings.stage, mode=mode, run=run)]))


KNN_JOB = _bench("evaluate_knn")


def knn_jobs(settings, groups) -> dict[str, list[str]]:
    """{k-NN bank: benchmarks of the jobs it needed besides the k-NN job}: the base, the validation
    store and the bank's stores (the unaugmented store; repeat 0's K epochs and their manifests),
    as :mod:`augcache.evaluation.scoring`'s banks are named."""
    k, cut = settings.config["cache"]["k"], extraction(settings, groups)
    shared = base_jobs(settings) + _made_by(VAL, k, 0, cut)
    return {"unaugmented": shared + _made_by(NOAUG, k, 0, cut),
            f"{k} cached epochs": shared + manifest_jobs(0, k) + _made_by(EPOCHS, k, 0, cut)}


def other_jobs(settings) -> list[str]:
    """Benchmarks of the jobs the report reads beside the runs': the sweep's points, the choice of
    the head and its export, the test-time views and their manifests, the evaluation jobs."""
    from augcache.training.sweep import sweep_points

    # a config of an earlier version may lack the newer sections
    config, evaluation = settings.config, settings.config.get("eval") or {}
    points = sweep_points(config["head_sweep"], config["head"]) if config.get("head_sweep") else {}
    # with eval.folds, each point's fold runs and its head refit on every labelled image
    folds = [None, *range(settings.folds)] if settings.folds else [None]
    jobs = [_bench("train_sweep_point", point=point, repeat=repeat, fold=fold_part(fold))
            for point in points for repeat in settings.repeats() for fold in folds]
    jobs += [_bench("select_head"), _bench("export_model")]
    jobs += _made_by(TTA, 0, 0, extraction(settings, ()))
    jobs.append(_bench("evaluate_heads"))
    jobs += [KNN_JOB] if evaluation.get("knn") else []
    jobs += [_bench("score_test")] if settings.has_test else []
    return jobs


def needed_benchmarks(settings, groups) -> list[str]:
    """Every benchmark the account of the config's runs reads (groups: the epochs of each
    extraction job)."""
    needed = dict.fromkeys(data_jobs(settings) + other_jobs(settings))
    for mode, k, repeat, fold in settings.runs():
        needed.update(dict.fromkeys(run_jobs(settings, mode.name, k, repeat, groups, fold)))
    return list(needed)


def read_benchmark(path) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of one job's benchmark."""
    table = pd.read_csv(path, sep="\t")
    rss = pd.to_numeric(table["max_rss"], errors="coerce").max() if "max_rss" in table else float("nan")
    return float(table["s"].iloc[0]), float(rss)


@dataclass(frozen=True)
class JobCost:
    """One job's cost: what computing its outputs took (seconds, peak MiB), and its last run's
    seconds, which differ where that run reused outputs (reused)."""

    seconds: float
    max_rss_mb: float
    last_run_seconds: float
    reused: bool


def own_cost(bench: Path) -> dict | None:
    """What the last run of the job of benchmark `bench` recorded of itself (see
    :func:`augcache.jobs.job.write_cost_record`): seconds, peak MiB, started and ended; None for a job
    of an earlier version, which recorded nothing."""
    record = Path(cost_record(str(bench)))
    return json.loads(record.read_text()) if record.is_file() else None


def job_cost(bench: Path) -> JobCost:
    """The cost of the job of benchmark `bench` (see the module's description): seconds by the
    job's own process clock, the one a reuse entry keeps too (Snakemake's benchmark where the
    job recorded none), peak memory from the benchmark."""
    seconds, rss = read_benchmark(bench)
    own = own_cost(bench)
    if own is not None:
        seconds = float(own["seconds"])
    record = Path(reuse_record(str(bench)))
    if not record.is_file():
        return JobCost(seconds, rss, seconds, False)
    reused = json.loads(record.read_text())
    if reused.get("computed_seconds") is None:  # entries stored without their cost: the run's own
        return JobCost(seconds, rss, seconds, True)
    computed = reused["computed_seconds"] + (0.0 if reused["whole_job"] else seconds)
    return JobCost(computed, max(rss, reused.get("computed_max_rss_mb") or 0.0), seconds, True)


@dataclass
class Account:
    """The cost of a config's runs: one row per run (end_to_end_seconds, peak_rss_mb), the seconds
    of the data jobs every mode shares, and which jobs reused outputs in their last run."""

    runs: pd.DataFrame
    data_seconds: float
    # benchmark (relative to the root) -> its JobCost, for every job the runs needed that has one
    jobs: dict = field(default_factory=dict)

    # when the last runs of the jobs began and ended (seconds since the epoch), where they recorded it
    spans: list = field(default_factory=list)
    # {k-NN bank: seconds of the jobs it needed but the k-NN job}, with eval.knn
    knn_seconds: dict = field(default_factory=dict)
    # {(mode, K or None): seconds of every job its runs needed, each job once}: what they cost together
    mode_seconds: dict = field(default_factory=dict)

    @property
    def reused(self) -> dict:
        return {name: cost for name, cost in self.jobs.items() if cost.reused}

    def knn_bank_seconds(self, bank: str, classifier_seconds: dict) -> float:
        """A k-NN bank's seconds end to end, as a run's: the jobs it needed, plus the k-NN job's
        own classifier seconds for the bank and an even share of the rest of that job (its start,
        reading the validation store) among its banks. classifier_seconds: {bank: seconds}."""
        shared = self.jobs[KNN_JOB].seconds - sum(classifier_seconds.values())
        return self.knn_seconds[bank] + classifier_seconds[bank] + max(shared, 0.0) / len(classifier_seconds)

    @property
    def last_run_seconds(self) -> float:
        """The seconds of every needed job's last run, added up."""
        return sum(cost.last_run_seconds for cost in self.jobs.values())

    @property
    def wall_seconds(self) -> float:
        """Wall-clock seconds during which at least one job's last run was running (the union of
        their spans, so that jobs side by side count once and a pause between two invocations not
        at all); nan when no job recorded when it ran."""
        if not self.spans:
            return float("nan")
        total, reached = 0.0, float("-inf")
        for start, end in sorted(self.spans):
            if end > reached:
                total += end - max(start, reached)
                reached = end
        return total


def account(settings, summaries: pd.DataFrame, groups, root=".") -> Account:
    """The Account of the runs of `summaries` (mode, k, repeat); groups: the epochs of each
    extraction job in today's plan (Settings.epoch_groups)."""
    root = Path(root)
    read: dict[str, JobCost] = {}

    def cost(jobs):
        found = [read.setdefault(j, job_cost(root / j)) for j in jobs if (root / j).is_file()]
        return sum(c.seconds for c in found), max((c.max_rss_mb for c in found), default=float("nan"))

    rows, by_mode = [], {}
    for row in summaries.itertuples():
        fold = getattr(row, "fold", None)
        fold = None if fold is None or pd.isna(fold) else int(fold)
        jobs = run_jobs(settings, row.mode, int(row.k), int(row.repeat), groups, fold)
        key = (row.mode, int(row.k) if MODES[row.mode].uses_k else None)
        by_mode.setdefault(key, {}).update(dict.fromkeys(jobs))
        seconds, rss = cost(jobs)
        rows.append({"run": row.run, "end_to_end_seconds": seconds, "peak_rss_mb": rss})
    data_seconds, _ = cost(data_jobs(settings))
    cost(other_jobs(settings))
    # each k-NN bank's jobs but the k-NN job itself, counted as a run's
    knn_seconds = {bank: cost(jobs)[0] for bank, jobs in knn_jobs(settings, groups).items()} \
        if KNN_JOB in read else {}
    spans = [(own["started"], own["ended"]) for own in map(own_cost, (root / j for j in read)) if own]
    mode_seconds = {mode: cost(jobs)[0] for mode, jobs in by_mode.items()}
    return Account(pd.DataFrame(rows), data_seconds, read, spans, knn_seconds, mode_seconds)
