"""The report's plots: learning curves, accuracy, disk and time against K, and the head sweep,
each a matplotlib figure, embedded in the page as PNG."""

from __future__ import annotations

import base64
import io
import json

import pandas as pd
from matplotlib.ticker import MaxNLocator

from augcache.core.atomic import atomic_path
from augcache.report.tables import MODE_TITLES
from augcache.training.modes import CACHE_MODE, MODES, SPEED_BASELINE


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig) -> str:
    """The figure as base64 PNG (closed afterwards)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def write_png(path, data: str) -> None:
    """Write base64 PNG data to path (atomically); nothing without a path."""
    if path:
        with atomic_path(path) as tmp:
            tmp.write_bytes(base64.b64decode(data))


def curves_figure(summaries: pd.DataFrame, metrics: dict[str, pd.DataFrame], k_main: int):
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for mode in MODE_TITLES:
        runs = summaries[(summaries["mode"] == mode) & (summaries["repeat"] == 0)
                         & ((summaries["k"] == k_main) | ~summaries["mode"].map(lambda m: MODES[m].uses_k))]
        if runs.empty:
            continue
        curves = [metrics[r] for r in runs["run"]]
        epochs = curves[0]["epoch"] + 1
        # a check (replay) lies on the curve it reproduces: thin, dashed, with markers, over a wide line
        style = (dict(ls="--", lw=1, marker="x", ms=4, zorder=3) if MODES[mode].checks
                 else dict(ls="-", lw=2.5, alpha=0.8))
        for ax, col in zip(axes, ("val_accuracy", "accuracy")):
            ax.plot(epochs, curves[0][col], label=MODE_TITLES[mode], **style)
    for ax, title in zip(axes, ("validation accuracy", "training accuracy")):
        ax.set_xlabel("head epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{title} (repeat 0, K={k_main})")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig


def k_figure(table: pd.DataFrame):
    plt = _pyplot()
    cached = table[table["mode"] == CACHE_MODE.name].sort_values("k")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].errorbar(cached["k"], cached["final_val_accuracy_mean"], yerr=cached["final_val_accuracy_sd"].fillna(0),
                     marker="o", capsize=3, label=CACHE_MODE.name)
    # modes without K: one line each across the K axis
    for colour, mode in zip(("C1", "C3", "C4", "C5"), [m for m in MODES.values() if not m.uses_k]):
        row = table[table["mode"] == mode.name]
        if len(row):
            axes[0].axhline(float(row["final_val_accuracy_mean"].iloc[0]), color=colour, ls=":",
                            label=mode.title)
    axes[0].set_title("final validation accuracy")
    axes[0].legend(fontsize=7)
    axes[1].plot(cached["k"], cached["disk_bytes"] / 1e6, marker="o")
    axes[1].set_title("cache on disk (MB)")
    timed = "end_to_end_seconds" if table["end_to_end_seconds"].notna().any() else "total_seconds"
    axes[2].plot(cached["k"], cached[timed], marker="o", label=CACHE_MODE.name)
    row = table[table["mode"] == SPEED_BASELINE.name]
    if len(row):
        axes[2].axhline(float(row[timed].iloc[0]), color="C1", ls=":", label=SPEED_BASELINE.title)
    axes[2].set_title("end-to-end seconds" if timed == "end_to_end_seconds" else "conv + head seconds")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("K (cached epochs)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return fig


def sweep_figure(table: pd.DataFrame, select_on: str):
    """Mean of the selection metric against each swept key (one panel per key, other keys pooled)."""
    plt = _pyplot()
    settings = pd.DataFrame([json.loads(s) for s in table["settings"]])
    fig, axes = plt.subplots(1, len(settings.columns), figsize=(4 * len(settings.columns), 3.4), squeeze=False)
    for ax, key in zip(axes[0], settings.columns):
        values = settings[key].map(lambda v: "-".join(map(str, v)) if isinstance(v, list) else v)
        for value, rows in table.groupby(values.to_numpy(), sort=True):
            ax.scatter([str(value)] * len(rows), rows[f"{select_on}_mean"], color="C0")
        chosen = table[table["chosen"]]
        ax.scatter([str(values[chosen.index[0]])], chosen[f"{select_on}_mean"], color="C3", marker="*", s=150,
                   label="chosen")
        ax.set_xlabel(key)
        ax.set_ylabel(f"{select_on} (mean over repeats)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return fig


def confusion_figure(reports: dict):
    """One confusion matrix per split ({title: a class report, see
    :func:`augcache.evaluation.metrics.class_report`}): counts, each row (true class) shaded by its share."""
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(reports), figsize=(4.6 * len(reports), 4.2), squeeze=False)
    for ax, (title, report) in zip(axes[0], reports.items()):
        counts = np.asarray(report["confusion"], dtype=float)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        classes = report["classes"]
        ticks = range(len(classes))
        ax.set_xticks(ticks, classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(ticks, classes, fontsize=8)
        if len(classes) <= 30:
            for (i, j), value in np.ndenumerate(counts):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title}: accuracy {report['accuracy']:.3f}, macro {report['macro_accuracy']:.3f}", fontsize=9)
    fig.tight_layout()
    return fig
