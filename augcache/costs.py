"""What each training run cost end to end, from Snakemake's benchmark of every job it needed.

A job's benchmark (``results/benchmarks/…tsv``, beside its log) holds its wall seconds and peak
memory, the start of its process (Python, TensorFlow) included. A run needed: the base check (and
the demo base or the ImageNet weights), the validation store and its own training job; a cached
run also its K epoch stores and manifests, a replay run the manifests, a ``noaug`` run the
unaugmented store. The index and the pixel store serve every mode; they are shown apart. A job
whose outputs were reused (see :mod:`augcache.reuse`) counts what the reuse took.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from augcache import paths
from augcache.modes import MODES
from augcache.paths import repeat_prefix


def _bench(relative: str) -> str:
    return f"{paths.BENCHMARKS}/{relative}.tsv"


def data_jobs(settings) -> list[str]:
    """Benchmarks of the jobs every mode shares: the demo images, the index and the pixel store."""
    jobs = [_bench("make_demo_data")] if settings.uses_demo_data else []
    jobs.append(_bench("index_dataset"))
    if settings.decode_shards > 1:
        jobs += [_bench(f"decode_pixels/shard_{s}") for s in range(settings.decode_shards)]
        jobs.append(_bench("merge_pixels"))
    return jobs


def base_jobs(settings) -> list[str]:
    """Benchmarks of the jobs that make and check the base, which every run needs."""
    jobs = [_bench("make_demo_base")] if settings.uses_demo_base else []
    if settings.fetches_weights:
        jobs.append(_bench("fetch_weights"))
    return jobs + [settings.checked_base_benchmark()]


def manifest_jobs(repeat: int, k: int) -> list[str]:
    """Benchmarks of the jobs that wrote a repeat's first k manifests."""
    return [_bench(f"{repeat_prefix(repeat)}manifest/epoch_{e}") for e in range(k)]


def store_jobs(settings, repeat: int, k: int, groups) -> list[str]:
    """Benchmarks of the jobs that made a repeat's first k epoch stores (shards and merges, or the
    jobs of several epochs, see cache.epochs_per_job); groups: the epochs of each job."""
    prefix, shards = repeat_prefix(repeat), settings.config["cache"]["shards_per_epoch"]
    if shards > 1:
        return [job for e in range(k) for job in
                [_bench(f"{prefix}extract/epoch_{e}/shard_{s}") for s in range(shards)]
                + [_bench(f"{prefix}merge_shards/epoch_{e}")]]
    needed = [g for g in groups if g[0] < k]
    return [_bench(f"{prefix}extract/{paths.extraction_job(g)}") for g in needed]


def epoch_groups_made(root: Path) -> list[list[int]]:
    """The epochs of each extraction job of a finished run, from its benchmarks' names."""
    groups = {}
    for bench in (root / paths.BENCHMARKS / "extract").glob("epoch*.tsv"):
        first, _, last = bench.stem.split("_", 1)[1].partition("-")
        groups[int(first)] = list(range(int(first), int(last or first) + 1))
    return [groups[first] for first in sorted(groups)]


def run_jobs(settings, mode: str, k: int, repeat: int, groups) -> list[str]:
    """Benchmarks of every job one training run needed, the data jobs left out."""
    table = MODES[mode]
    jobs = base_jobs(settings) + [_bench("extract/val")]
    if table.manifests == "cached":
        jobs += manifest_jobs(repeat, k)
    if table.stored == "epochs":
        jobs += store_jobs(settings, repeat, k, groups)
    if table.stored == "noaug":
        jobs.append(_bench("extract/train_noaug"))
    run = table.run_dir(k, repeat, settings.stage).removeprefix("results/")
    return jobs + [_bench(run)]


def needed_benchmarks(settings, groups) -> list[str]:
    """Every benchmark the account of the config's runs reads (groups: the epochs of each
    extraction job)."""
    needed = dict.fromkeys(data_jobs(settings))
    k_main = settings.config["cache"]["epochs"]
    for mode in (m for m in MODES.values() if m.always or m.name in settings.modes):
        for k, repeat in mode.runs(settings.k_values(), k_main, settings.repeats()):
            needed.update(dict.fromkeys(run_jobs(settings, mode.name, k, repeat, groups)))
    return list(needed)


def read_benchmark(path) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of one job's benchmark."""
    table = pd.read_csv(path, sep="\t")
    rss = pd.to_numeric(table["max_rss"], errors="coerce").max() if "max_rss" in table else float("nan")
    return float(table["s"].iloc[0]), float(rss)


def account(settings, summaries: pd.DataFrame, root=".") -> tuple[pd.DataFrame, float]:
    """(one row per run: end_to_end_seconds of every job it needed, peak_rss_mb of the largest,
    the seconds of the shared data jobs) for the runs of `summaries` (mode, k, repeat)."""
    root = Path(root)
    read = {}

    def cost(jobs):
        found = [read.setdefault(j, read_benchmark(root / j)) for j in jobs if (root / j).is_file()]
        return sum(s for s, _ in found), max((r for _, r in found), default=float("nan"))

    rows = []
    groups = epoch_groups_made(root)
    for row in summaries.itertuples():
        seconds, rss = cost(run_jobs(settings, row.mode, int(row.k), int(row.repeat), groups))
        rows.append({"run": row.run, "end_to_end_seconds": seconds, "peak_rss_mb": rss})
    data_seconds, _ = cost(data_jobs(settings))
    return pd.DataFrame(rows), data_seconds
