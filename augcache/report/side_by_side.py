"""Ways of augmenting compared side by side: none, in feature space, the exact cache of K epochs,
both together, and on the fly; which wins on this data and by how much.

Reads the report's modes table (:func:`augcache.report.tables.mode_table`), one row per mode and K.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from augcache.report.compared import compared, paired, points
from augcache.training.modes import MODES, SIDE_BY_SIDE, SPEED_BASELINE


def side_by_side_table(table: pd.DataFrame, k_main: int) -> pd.DataFrame:
    """One row per mode of :data:`augcache.training.modes.SIDE_BY_SIDE` that ran (modes that use K at K = k_main): final
    validation accuracy mean and sd over repeats, end-to-end seconds (or those measured inside
    the jobs, when there is no end-to-end account) and bytes on disk."""
    rows = []
    for mode in SIDE_BY_SIDE:
        name = mode.name
        found = table[(table["mode"] == name) & ((table["k"] == k_main) if mode.uses_k else True)]
        if found.empty:
            continue
        row = found.iloc[0]
        seconds = row["end_to_end_seconds"] if not np.isnan(row["end_to_end_seconds"]) else row["total_seconds"]
        rows.append({"mode": name, "k": k_main if mode.uses_k else None, "repeats": int(row["repeats"]),
                     "accuracy_mean": float(row["final_val_accuracy_mean"]),
                     "accuracy_sd": float(row["final_val_accuracy_sd"]),
                     "macro_mean": float(row["final_val_macro_accuracy_mean"]),
                     "macro_sd": float(row["final_val_macro_accuracy_sd"]),
                     "seconds": float(seconds), "disk_bytes": float(row["disk_bytes"])})
    return pd.DataFrame(rows, columns=["mode", "k", "repeats", "accuracy_mean", "accuracy_sd", "macro_mean",
                                       "macro_sd", "seconds", "disk_bytes"])


def row_title(row) -> str:
    """How the side-by-side table names a row's mode (with its K when it uses one)."""
    title = MODES[row["mode"]].title
    return f"{title}, K={int(row['k'])}" if MODES[row["mode"]].uses_k else title


def row_key(row) -> tuple:
    """A side-by-side row's (mode, K or None), as the runs' outcomes are keyed
    (:func:`augcache.report.compared.final_outcomes`)."""
    return row["mode"], None if pd.isna(row["k"]) else int(row["k"])


def against_reference(side: pd.DataFrame, outcomes: dict) -> tuple:
    """(the reference row, {mode: its paired difference against it}): the reference is on the fly
    where it ran, else the mode of highest mean accuracy; every other mode with outcomes is compared
    with it over the same images and seeds. ({} where the runs kept no image's outcome.)"""
    if side.empty:
        return None, {}
    ranked = side.sort_values("accuracy_mean", ascending=False, kind="stable")
    baseline = side[side["mode"] == SPEED_BASELINE.name]
    reference = (baseline if len(baseline) else ranked).iloc[0]
    key = row_key(reference)
    found = {}
    for row in side.to_dict("records"):
        if row["mode"] != reference["mode"]:
            d = paired(outcomes, row_key(row), key)
            if d is not None:
                found[row["mode"]] = d
    return reference, found


def verdict(side: pd.DataFrame, outcomes: dict | None = None, compared: tuple | None = None) -> str:
    """Which mode wins on this data (highest mean final validation accuracy): by the paired
    differences against the reference (:func:`against_reference`) and their 95 % intervals, or, for
    runs of an earlier version that kept no image's outcome, by how much it leads the next best
    against one sd (over repeats) of either; "" with fewer than two modes. compared: what
    :func:`against_reference` gave, where it was computed already."""
    if len(side) < 2:
        return ""
    reference, differences = compared or against_reference(side, outcomes or {})
    if differences and len(differences) == len(side) - 1:
        return _paired_verdict(side, reference, differences)
    ranked = side.sort_values("accuracy_mean", ascending=False, kind="stable")
    best, second = ranked.iloc[0], ranked.iloc[1]
    lead = best["accuracy_mean"] - second["accuracy_mean"]
    sd = float(np.nanmax([best["accuracy_sd"], second["accuracy_sd"], 0.0]))
    if lead <= 1e-9:
        return (f"Side by side, no mode wins on this data: {row_title(best)} and {row_title(second)} tie at "
                f"{best['accuracy_mean']:.3f} final validation accuracy ({best['seconds']:.0f} s and "
                f"{second['seconds']:.0f} s end to end).")
    text = (f"Side by side, {row_title(best)} wins on this data: {best['accuracy_mean']:.3f} final validation "
            f"accuracy, {lead:.3f} ahead of {row_title(second)} ({second['accuracy_mean']:.3f}), in "
            f"{best['seconds']:.0f} s against {second['seconds']:.0f} s")
    if sd == 0.0 and best["repeats"] < 2:
        return text + "; with one repeat, how much of the lead is chance is not measured."
    if lead > sd:
        return text + f"; the lead is larger than one sd ({sd:.3f})."
    return text + f"; the lead is within one sd ({sd:.3f}), so no mode wins clearly."


def _paired_verdict(side: pd.DataFrame, reference, differences: dict) -> str:
    name = row_title(reference)
    better = [m for m, d in differences.items() if d.low > 0]
    worse = [m for m, d in differences.items() if d.high < 0]
    rows = {row["mode"]: row for row in side.to_dict("records")}
    said = "; ".join(f"{row_title(rows[m])} is {compared(d, 'it')} ({points(d)})" for m, d in differences.items())
    if better:
        best = max(better, key=lambda m: differences[m].mean)
        head = f"Side by side, {row_title(rows[best])} wins on this data: it is more accurate than {name}"
    elif not worse:
        head = f"Side by side, no mode is told apart from {name} on this data"
    else:
        head = f"Side by side, no mode is more accurate than {name} on this data"
    return f"{head}. Against {name}, paired over the same images and seeds: {said}."


def side_by_side_figure(side: pd.DataFrame):
    """Accuracy (mean ± sd), seconds and disk of each mode, as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row_title(row).split(" (")[0] + (f" K={int(row['k'])}" if MODES[row["mode"]].uses_k else "")
             for row in side.to_dict("records")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    positions = np.arange(len(side))
    axes[0].bar(positions, side["accuracy_mean"], yerr=side["accuracy_sd"].fillna(0), capsize=3, color="C0")
    axes[0].set_title("final validation accuracy (mean ± sd)")
    low = float((side["accuracy_mean"] - side["accuracy_sd"].fillna(0)).min())
    axes[0].set_ylim(max(0.0, low - 0.05), min(1.0, float(side["accuracy_mean"].max()) + 0.05) or 1.0)
    axes[1].bar(positions, side["seconds"], color="C1")
    axes[1].set_title("seconds, end to end")
    axes[2].bar(positions, side["disk_bytes"] / 1e6, color="C2")
    axes[2].set_title("features on disk (MB)")
    for ax in axes:
        ax.set_xticks(positions, names, rotation=25, ha="right", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    return fig
