"""The report's tables, as data: the modes table (one row per mode and K), the fine-tuning and
variants tables, the replay check, and how their numbers are written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augcache.training.modes import CACHE_MODE, MODES, SPEED_BASELINE

MODE_TITLES = {name: m.title for name, m in MODES.items()}
SPEEDUP = f"speedup_vs_{SPEED_BASELINE.name}"

# The largest difference of any metric, in any head epoch, between the replay run and the cached
# run it replays for which the replay still counts as reproducing it. Both train on the same stored
# numbers, so only float reassociation separates them.
REPLAY_TOLERANCE = 1e-3


def mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    """mean ± sd, or the mean alone where there is no spread to show (one repeat)."""
    if sd is None or np.isnan(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def size_text(n: float) -> str:
    """A number of bytes in B, KB, MB or GB (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} GB"


def load_runs(run_dirs) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """(summaries, metrics by run dir) of training runs."""
    summaries, metrics = [], {}
    for run_dir in map(Path, run_dirs):
        summary = json.loads((run_dir / "summary.json").read_text())
        summary["run"] = str(run_dir)
        summaries.append(summary)
        metrics[str(run_dir)] = pd.read_csv(run_dir / "metrics.csv")
    return pd.DataFrame(summaries), metrics


def macro_columns(group: pd.DataFrame) -> dict:
    """Mean and sd over repeats of the final head's macro-averaged validation accuracy (NaN for
    summaries that lack it)."""
    if "final_val_macro_accuracy" not in group:
        return {"final_val_macro_accuracy_mean": float("nan"), "final_val_macro_accuracy_sd": float("nan")}
    return {"final_val_macro_accuracy_mean": float(group["final_val_macro_accuracy"].mean()),
            "final_val_macro_accuracy_sd": float(group["final_val_macro_accuracy"].std(ddof=1))}


def mean_sd_or_blank(mean: float, sd: float, digits: int = 3) -> str:
    """:func:`mean_sd`, or "" where there is no mean (a number older runs did not record)."""
    return "" if mean is None or np.isnan(mean) else mean_sd(mean, sd, digits)


def mode_table(summaries: pd.DataFrame) -> pd.DataFrame:
    """One row per (mode, K): means and standard deviations over repeats, and the speedup against
    the speed baseline (see :data:`augcache.training.modes.SPEED_BASELINE`): of the end-to-end seconds where
    the summaries carry them (a column ``end_to_end_seconds``, see :mod:`augcache.report.costs`), else of
    the conv and head seconds measured inside the jobs."""
    rows = []
    timed = "end_to_end_seconds" if "end_to_end_seconds" in summaries else "total_seconds"
    baseline = summaries[summaries["mode"] == SPEED_BASELINE.name][timed]
    baseline_time = float(baseline.mean()) if len(baseline) else float("nan")
    order = {m: i for i, m in enumerate(MODE_TITLES)}
    for (mode, k), group in summaries.groupby(["mode", "k"], sort=False):
        seconds = float(group[timed].mean())
        rows.append({
            "mode": mode,
            "k": int(k) if MODES[mode].uses_k else None,
            "repeats": len(group),
            "final_val_accuracy_mean": float(group["final_val_accuracy"].mean()),
            # one repeat has no spread: NaN, shown as the mean alone
            "final_val_accuracy_sd": float(group["final_val_accuracy"].std(ddof=1)),
            "best_val_accuracy_mean": float(group["best_val_accuracy"].mean()),
            "best_val_accuracy_sd": float(group["best_val_accuracy"].std(ddof=1)),
            **macro_columns(group),
            "conv_seconds": float(group["conv_seconds"].mean()),
            "head_seconds": float(group["head_seconds"].mean()),
            "total_seconds": float(group["total_seconds"].mean()),
            "end_to_end_seconds": float(group["end_to_end_seconds"].mean()) if timed != "total_seconds"
            else float("nan"),
            SPEEDUP: baseline_time / seconds if seconds > 0 else float("nan"),
            "disk_bytes": float(group["disk_bytes"].mean()),
            "_order": (order.get(mode, 99), int(k)),
        })
    table = pd.DataFrame(rows).sort_values("_order").drop(columns="_order").reset_index(drop=True)
    return table


def recommended_k(table: pd.DataFrame) -> tuple[int, int] | None:
    """(recommended K, best K) of the cached rows: the smallest K whose mean final validation
    accuracy is within one sd (over repeats) of the best K's mean; None without cached rows."""
    cached = table[table["mode"] == CACHE_MODE.name].sort_values("k")
    if cached.empty:
        return None
    best = cached.loc[cached["final_val_accuracy_mean"].idxmax()]
    sd = 0.0 if np.isnan(best["final_val_accuracy_sd"]) else float(best["final_val_accuracy_sd"])
    within = cached[cached["final_val_accuracy_mean"] >= best["final_val_accuracy_mean"] - sd]
    return int(within["k"].iloc[0]), int(best["k"])


def variant_table(default: pd.DataFrame, variants: dict[str, list]) -> pd.DataFrame:
    """One row per cache (the default and each variant): cached runs of K = their cache.k,
    validation accuracy mean and sd over repeats, conv + head seconds, cache on disk."""
    runs = {"default": default}
    runs.update({name: pd.DataFrame([json.loads(Path(p).read_text()) for p in paths])
                 for name, paths in variants.items()})
    rows = []
    for name, group in runs.items():
        rows.append({
            "cache": name,
            "dtype": str(group["cache_dtype"].iloc[0]) if "cache_dtype" in group else "",
            "k": int(group["k"].iloc[0]),
            "repeats": len(group),
            "final_val_accuracy_mean": float(group["final_val_accuracy"].mean()),
            "final_val_accuracy_sd": float(group["final_val_accuracy"].std(ddof=1)),  # NaN for one repeat
            "best_val_accuracy_mean": float(group["best_val_accuracy"].mean()),
            **macro_columns(group),
            "total_seconds": float(group["total_seconds"].mean()),
            "disk_bytes": float(group["disk_bytes"].mean()),
        })
    return pd.DataFrame(rows)


def finetune_table(summaries: pd.DataFrame, k_main: int) -> pd.DataFrame:
    """One row per mode (cached of K = cache.k): head-only and fine-tuned best validation
    accuracy (mean over repeats), median seconds per epoch of each phase, cache on disk."""
    rows = []
    for mode_name, group in summaries.groupby("mode", sort=False):
        if MODES[mode_name].uses_k:
            group = group[group["k"] == k_main]
        if group.empty:
            continue
        rows.append({
            "mode": mode_name,
            "repeats": len(group),
            "head_only_best_val_accuracy": float(group["head_only_best_val_accuracy"].mean()),
            "finetuned_best_val_accuracy": float(group["finetuned_best_val_accuracy"].mean()),
            # the head at the best epoch of both phases, every class counting the same
            "best_head_val_macro_accuracy": float(group["best_head_val_macro_accuracy"].mean())
            if "best_head_val_macro_accuracy" in group else float("nan"),
            "head_seconds_per_epoch": float(group["head_seconds_per_epoch"].mean()),
            "finetune_seconds_per_epoch": float(group["finetune_seconds_per_epoch"].mean()),
            "disk_bytes": float(group["disk_bytes"].mean()),
        })
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ReplayVerdict:
    """Does the replay run reproduce the cached run? differences: largest per metric."""

    differences: dict
    tolerance: float = REPLAY_TOLERANCE

    @property
    def largest(self) -> float:
        return max(self.differences.values())

    @property
    def reproduces(self) -> bool:
        return self.largest <= self.tolerance


def replay_verdict(cached: pd.DataFrame, replay: pd.DataFrame, tolerance: float = REPLAY_TOLERANCE) -> ReplayVerdict:
    """Compare the metrics (one row per head epoch) of a cached run and of its replay."""
    return ReplayVerdict({col: float(np.abs(cached[col].to_numpy() - replay[col].to_numpy()).max())
                          for col in ("loss", "accuracy", "val_loss", "val_accuracy")}, tolerance)
