"""The table of jobs: every job of the workflow by name, with its rule(s), its script, the name its
log and benchmark are filed under, and the reuse kind its outputs are kept as.

The one place a job's log and benchmark paths are spelled: the rule files read them from here
(``log: JOBS["extract_val"].log()``), the cost account finds each job's benchmark here
(:mod:`augcache.report.costs`), and a running job finds its records beside its benchmark
(:func:`benchmark_of_log`). A name is a pattern: the rule leaves its wildcards in place
(``{repeat_dir}``, ``{epoch}``), the cost account fills them in.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from augcache.core.paths import BENCHMARKS, LOGS


class _Partial(dict):
    """Values for str.format_map that leave every field not given as it was ({name})."""

    def __missing__(self, key):
        return "{" + key + "}"


@dataclass(frozen=True)
class Job:
    """One job of the workflow.

    name: its name in the table (the rule's name, or the family's for rules made in a loop).
    filed_as: the pattern of its log and benchmark below results/logs and results/benchmarks.
    script: its rule script (scripts/<script>.py).
    reuse: the kind its outputs are kept as in results/reuse (:mod:`augcache.jobs.reuse`), None for
        a job that keeps nothing; a job keyed as another (a shard, a merge, several epochs in one
        job) is kept as that job's kind, so their entries are shared.
    rules: the names of its rules, when they are not its name (a pattern for a family).
    """

    name: str
    filed_as: str
    script: str
    reuse: str | None = None
    rules: str | None = None

    def fields(self) -> list[str]:
        return [field for _, field, _, _ in string.Formatter().parse(self.filed_as) if field]

    def filed(self, **values) -> str:
        """Its name below the logs and benchmarks with these values (the other fields left as
        wildcards)."""
        unknown = set(values) - set(self.fields())
        if unknown:
            raise ValueError(f"job {self.name} is filed as {self.filed_as}: no field {', '.join(sorted(unknown))}")
        return self.filed_as.format_map(_Partial({k: str(v) for k, v in values.items()}))

    def log(self, **values) -> str:
        return f"{LOGS}/{self.filed(**values)}.log"

    def benchmark(self, **values) -> str:
        return f"{BENCHMARKS}/{self.filed(**values)}.tsv"


JOBS = {
    job.name: job
    for job in (
        Job("make_demo_data", "make_demo_data", "make_demo_data"),
        Job("make_demo_base", "make_demo_base", "make_demo_base", reuse="make_demo_base"),
        Job("fetch_weights", "fetch_weights", "fetch_weights"),
        # {key}: the hash of the check's params, so a failed check never replaces a good one's records
        Job("check_conv_base", "check_conv_base/{key}", "check_conv_base", reuse="check_conv_base"),
        Job("describe_conv_base", "describe_conv_base", "describe_conv_base"),
        Job("list_dataset", "list_dataset", "list_dataset"),
        Job("decode_pixels", "decode_pixels/shard_{shard}", "decode_pixels"),
        Job("index_dataset", "index_dataset", "index_dataset", reuse="index_dataset"),
        Job("merge_pixels", "merge_pixels", "merge_pixels"),
        Job("write_manifest", "{repeat_dir}manifest/epoch_{epoch}", "write_manifest", reuse="write_manifest"),
        Job("write_folds", "{repeat_dir}manifest/folds", "write_folds"),
        Job("write_view_manifest", "manifest/val_tta/view_{view}", "write_manifest", reuse="write_manifest"),
        Job("extract_epoch", "{repeat_dir}extract/epoch_{epoch}", "extract_epoch", reuse="extract_epoch"),
        Job("extract_shard", "{repeat_dir}extract/epoch_{epoch}/shard_{shard}", "extract_epoch"),
        Job("merge_shards", "{repeat_dir}merge_shards/epoch_{epoch}", "merge_shards", reuse="extract_epoch"),
        # (a job of one epoch, where others hold several, is filed as extract_epoch: EpochStores.group_job)
        Job("extract_epochs", "{repeat_dir}extract/epochs_{first}-{last}", "extract_epochs", reuse="extract_epoch",
            rules="extract_epochs_{first}_{last}"),
        Job("merge_epochs", "merge_epochs", "merge_epochs"),
        Job("extract_val", "extract/val", "extract_unaugmented", reuse="extract_unaugmented"),
        Job("extract_noaug", "extract/train_noaug", "extract_unaugmented", reuse="extract_unaugmented"),
        Job("extract_view", "extract/val_tta/view_{view}", "extract_view", reuse="extract_view"),
        # {run}: the run's folder in its mode (k{k}_r{repeat}{fold}, or r{repeat}{fold}; {fold} "" or _f{f})
        Job("train", "{stage}/{mode}/{run}", "train_head", reuse="train_head", rules="train_{mode}"),
        Job("train_sweep_point", "sweep/{point}/r{repeat}{fold}", "train_head", reuse="train_head"),
        Job("select_head", "select_head", "select_head"),
        Job("export_model", "export_model", "export_model", reuse="export_model"),
        Job("score_test", "score_test", "score_test"),
        Job("predict", "predict", "predict"),
        Job("evaluate_heads", "evaluate_heads", "evaluate_heads"),
        Job("evaluate_knn", "evaluate_knn", "evaluate_knn"),
        Job("make_report", "make_report", "make_report"),
        Job("track_runs", "track_runs", "track_runs"),
        Job("tensorboard_logs", "tensorboard_logs", "tensorboard_logs"),
    )
}


def reuse_kind(script: str) -> str:
    """The kind a job running this script keeps its outputs as (a script whose jobs keep none: its
    own name)."""
    kinds = {j.reuse for j in JOBS.values() if j.script == script and j.reuse}
    if len(kinds) > 1:
        raise ValueError(f"scripts/{script}.py runs jobs kept as {sorted(kinds)}: one kind per script")
    return kinds.pop() if kinds else script


def benchmark_of_log(log: str) -> str:
    """The benchmark beside a job's log: results/…/logs/X.log -> results/…/benchmarks/X.tsv (a
    variant's below its folder)."""
    head, found, tail = str(log).rpartition(f"{LOGS}/")
    if not found:
        raise ValueError(f"{log}: a job's log lies below {LOGS}/")
    return f"{head}{BENCHMARKS}/{tail.removesuffix('.log')}.tsv"


def filed_as(benchmark: str) -> str:
    """A job's name below the benchmarks (and logs) from its benchmark's path:
    results/benchmarks/X.tsv -> X."""
    return str(benchmark).removeprefix(f"{BENCHMARKS}/").removesuffix(".tsv")


def reuse_record(benchmark: str) -> str:
    """Beside a job's benchmark, the record of the outputs its last run reused (see augcache.jobs.job):
    X.tsv -> X.reused.json."""
    return f"{str(benchmark).removesuffix('.tsv')}.reused.json"


def cost_record(benchmark: str) -> str:
    """Beside a job's benchmark, what its last run cost by its own clock (see augcache.jobs.job): X.tsv ->
    X.cost.json."""
    return f"{str(benchmark).removesuffix('.tsv')}.cost.json"
