"""The comparison report: one self-contained HTML file (plots embedded), from the runs' outputs."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from augcache.atomic import atomic_path, write_csv, write_text_atomic
from augcache.modes import CACHE_MODE, MODES, SPEED_BASELINE
from augcache.side_by_side import row_title, side_by_side_figure, side_by_side_table, verdict

MODE_TITLES = {name: m.title for name, m in MODES.items()}
SPEEDUP = f"speedup_vs_{SPEED_BASELINE.name}"

LIMITS = [
    "Without conv_base.split the conv base is frozen and only the dense head learns. With it, the "
    "layers after the split are fine-tuned with the head, from activations cached at the split; the "
    "layers before it stay frozen.",
    "The base runs in inference mode: BatchNorm uses its stored moving statistics, never batch "
    "statistics, so a sample's features do not depend on its batch mates.",
    "A cache of K epochs repeats its augmentations after K head epochs; on-the-fly augmentation never "
    "repeats. The K sweep shows what that costs on this data.",
    "float16 storage rounds every feature to about 3 significant digits (relative step 2^-10); the "
    "replay check trains on the same rounded values and so measures the pipeline, not the rounding.",
    "uint8 storage (cache.dtype: uint8) quantises each sample's channels to 256 levels between their "
    "smallest and largest value: lossy, unlike float16's rounding; the variants table shows its effect.",
    "Disk: each cached epoch stores one feature array per training sample (see bytes per sample-epoch); "
    "K epochs cost K times that.",
    "Validation features are computed once, unaugmented, and shared by every mode.",
    "Feature-space augmentation (featureaug, hybrid) transforms the base's outputs, not the images: it "
    "cannot show the base a rotated object or another crop of the image, and its transforms, made for one "
    "kind of features (FroFA's pointwise ones for transformer tokens, LOFF-TA's flips and crops for spatial "
    "maps), can hurt on another; the side-by-side table measures it on this data.",
]


def load_runs(run_dirs) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """(summaries, metrics by run dir) of training runs."""
    summaries, metrics = [], {}
    for run_dir in map(Path, run_dirs):
        summary = json.loads((run_dir / "summary.json").read_text())
        summary["run"] = str(run_dir)
        summaries.append(summary)
        metrics[str(run_dir)] = pd.read_csv(run_dir / "metrics.csv")
    return pd.DataFrame(summaries), metrics


def mode_table(summaries: pd.DataFrame) -> pd.DataFrame:
    """One row per (mode, K): means and standard deviations over repeats, and the speedup against
    the speed baseline (see :data:`augcache.modes.SPEED_BASELINE`): of the end-to-end seconds where
    the summaries carry them (a column ``end_to_end_seconds``, see :mod:`augcache.costs`), else of
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


def _spread(rows) -> bool:
    """Every row has a spread over repeats (two or more), so a difference can be told from chance."""
    return len(rows) > 0 and bool((pd.DataFrame(rows)["repeats"] >= 2).all())


def _verdict(cached, baseline) -> str:
    """Does cached augmentation pay against on the fly: as accurate within one sd, and faster end
    to end? Without a spread (one repeat) the accuracy difference is said to be unmeasured."""
    faster = cached[SPEEDUP] > 1
    # two decimals near 1, where one would read as "1.0× faster"
    speedup = f"{cached[SPEEDUP]:.1f}" if cached[SPEEDUP] >= 1.1 else f"{cached[SPEEDUP]:.2f}"
    speed = f"{speedup}× faster end to end" if faster else "not faster end to end than on the fly"
    if not _spread([cached, baseline]):
        return (f"With one repeat, whether cached augmentation is as accurate as on the fly is not measured "
                f"(set train.repeats to 2 or more for a verdict); it is {speed}.")
    sd = np.nanmax([cached["final_val_accuracy_sd"], baseline["final_val_accuracy_sd"], 0.0])
    as_good = cached["final_val_accuracy_mean"] >= baseline["final_val_accuracy_mean"] - sd
    if as_good and faster:
        return f"On this data cached augmentation pays: as accurate as on the fly within one sd, {speed}."
    return ("On this data cached augmentation does not pay: " +
            ("it is less accurate than on the fly by more than one sd" if not as_good else
             "it is not faster end to end than on the fly") + ".")


def _reuse_html(costs) -> str:
    """Which jobs' outputs came from the reuse store in their last run, and what those runs took."""
    if costs is None:
        return ""
    reused = costs.reused
    if not reused:
        return (f"<p id=\"reuse\">Every job was computed in its last run ({len(costs.jobs)} jobs, "
                f"{costs.last_run_seconds:.0f} s of job time).</p>")
    names = ", ".join(html.escape(name.removeprefix("results/benchmarks/").removesuffix(".tsv"))
                      for name in sorted(reused))
    return (f"<p id=\"reuse\">{len(reused)} of {len(costs.jobs)} jobs put outputs computed before in place in "
            f"their last run (<code>results/cache</code>): {names}. Their seconds in these tables are what "
            f"computing them took ({sum(c.seconds for c in reused.values()):.0f} s); their last runs took "
            f"{sum(c.last_run_seconds for c in reused.values()):.0f} s, and the last runs of all {len(costs.jobs)} "
            f"jobs {costs.last_run_seconds:.0f} s of job time.</p>")


def headline(table: pd.DataFrame, k_main: int, data_seconds: float) -> str:
    """The report's first paragraph, in plain words: does cached augmentation pay on this data
    (accuracy, end-to-end time, disk against on the fly and no augmentation), and which K to use."""
    def row(mode, k=None):
        rows = table[(table["mode"] == mode) & ((table["k"] == k) if k is not None else True)]
        return rows.iloc[0] if len(rows) else None

    def said(r, name):
        seconds = r["end_to_end_seconds"] if not np.isnan(r["end_to_end_seconds"]) else r["total_seconds"]
        return (f"{name} reaches {_mean_sd(r['final_val_accuracy_mean'], r['final_val_accuracy_sd'])} final "
                f"validation accuracy in {seconds:.0f} s")

    cached, baseline = row(CACHE_MODE.name, k_main), row(SPEED_BASELINE.name)
    noaug = next((row(m.name) for m in MODES.values() if m.stored == "noaug" and not m.feature_augment), None)
    if cached is None:
        return ""
    parts = [said(cached, f"Cached augmentation (K={k_main})") + f", with {_bytes(cached['disk_bytes'])} of cache"]
    verdict = ""
    if baseline is not None:
        parts.append(said(baseline, "on the fly"))
        verdict = _verdict(cached, baseline)
    if noaug is not None:
        parts.append(said(noaug, "without augmentation"))
    text = "; ".join(parts) + f" (index and pixel store, shared by all: {data_seconds:.0f} s). {verdict}"
    k = recommended_k(table)
    if k is not None and not _spread(table[table["mode"] == CACHE_MODE.name]):
        text += (f" With one repeat, K={k[1]} reached the best accuracy, but no K can be recommended: the "
                 "differences between K are not measured (set train.repeats to 2 or more).")
    elif k is not None:
        recommended, best = k
        text += (f" Recommended K: {recommended}, the smallest K whose mean accuracy is within one sd of the best "
                 f"K's ({best})" + (", so more cached epochs buy nothing measurable here." if recommended < best
                                    else "."))
    return text


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def curves_figure(summaries: pd.DataFrame, metrics: dict[str, pd.DataFrame], k_main: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def _cell(column: str, value, text: str) -> str:
    data = "" if value is None or (isinstance(value, float) and np.isnan(value)) else repr(value)
    return f'<td data-col="{column}" data-value="{html.escape(data)}">{html.escape(text)}</td>'


def _table_html(table: pd.DataFrame) -> str:
    head = ("<tr><th>mode</th><th>K</th><th>repeats</th><th>final val acc</th><th>best val acc</th>"
            "<th>conv-base s</th><th>head s</th><th>total s</th><th>end to end s</th><th>speedup vs on the fly</th>"
            "<th>cache on disk</th></tr>")
    rows = []
    for row in table.to_dict("records"):
        k = "" if row["k"] is None or pd.isna(row["k"]) else str(int(row["k"]))
        cells = [
            f"<td>{html.escape(MODE_TITLES.get(row['mode'], row['mode']))}</td>",
            _cell("k", None if k == "" else int(k), k),
            _cell("repeats", int(row["repeats"]), str(int(row["repeats"]))),
            _cell("final_val_accuracy_mean", row["final_val_accuracy_mean"],
                  _mean_sd(row["final_val_accuracy_mean"], row["final_val_accuracy_sd"])),
            _cell("best_val_accuracy_mean", row["best_val_accuracy_mean"],
                  _mean_sd(row["best_val_accuracy_mean"], row["best_val_accuracy_sd"])),
            _cell("conv_seconds", row["conv_seconds"], f"{row['conv_seconds']:.1f}"),
            _cell("head_seconds", row["head_seconds"], f"{row['head_seconds']:.1f}"),
            _cell("total_seconds", row["total_seconds"], f"{row['total_seconds']:.1f}"),
            _cell("end_to_end_seconds", row["end_to_end_seconds"],
                  "" if np.isnan(row["end_to_end_seconds"]) else f"{row['end_to_end_seconds']:.1f}"),
            _cell(SPEEDUP, row[SPEEDUP], "" if np.isnan(row[SPEEDUP]) else f"{row[SPEEDUP]:.1f}×"),
            _cell("disk_bytes", row["disk_bytes"], _bytes(row["disk_bytes"])),
        ]
        rows.append(f'<tr data-mode="{row["mode"]}" data-k="{k}">' + "".join(cells) + "</tr>")
    return f'<table id="modes">{head}{"".join(rows)}</table>'


def _side_by_side_html(side: pd.DataFrame, png: str | None) -> str:
    """The table (id ``side-by-side``), the verdict and the figure, or a note when fewer than two of
    the compared modes ran."""
    if len(side) < 2:
        return ("<p>Fewer than two of no augmentation, feature augmentation, cached, hybrid and on the fly "
                "ran (train.modes), so there is nothing to set side by side.</p>")
    head = ("<tr><th>mode</th><th>repeats</th><th>final val acc</th><th>end to end s</th>"
            "<th>features on disk</th></tr>")
    rows = "".join(
        f'<tr data-mode="{row["mode"]}"><td>{html.escape(row_title(row))}</td><td>{row["repeats"]}</td>'
        f'<td data-value="{row["accuracy_mean"]!r}">{_mean_sd(row["accuracy_mean"], row["accuracy_sd"])}</td>'
        f'<td>{row["seconds"]:.1f}</td><td>{_bytes(row["disk_bytes"])}</td></tr>'
        for row in side.to_dict("records"))
    figure = f'<img alt="side by side" src="data:image/png;base64,{png}">' if png else ""
    return f'<p>{html.escape(verdict(side))}</p><table id="side-by-side">{head}{rows}</table>{figure}'


def _mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    """mean ± sd, or the mean alone where there is no spread to show (one repeat)."""
    if sd is None or np.isnan(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} GB"


def _skipped_html(skipped: pd.DataFrame | None) -> str:
    if skipped is None or skipped.empty:
        return "<p>No file was left out.</p>"
    rows = "".join(f"<tr><td>{html.escape(str(r.path))}</td><td>{html.escape(str(r.reason))}</td></tr>"
                   for r in skipped.itertuples(index=False))
    return (f'<p>{len(skipped)} file(s) left out (<code>data.on_bad_image: skip</code>):</p>'
            f'<table id="skipped"><tr><th>path</th><th>reason</th></tr>{rows}</table>')


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>augcache report</title>
<style>
body {{ font-family: sans-serif; max-width: 1150px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>augcache report</h1>
<p id="headline"><b>{headline}</b></p>
{reuse}
<p>{n_train} training images, classes {classes};
head trained for {head_epochs} epochs in every mode, with the same head, optimizer and seeds.
Cached features: {bytes_per} bytes per sample-epoch ({dtype}).</p>
<h2>Augmentation side by side</h2>
<p>None, feature-space augmentation of the unaugmented features (featureaug), the cache of K exactly
augmented epochs, both together (hybrid) and on the fly, with the same head budget (K = cache.epochs;
final validation accuracy, mean ± sd over repeats; seconds and disk as in the modes table).</p>
{side_by_side}
<h2>Modes</h2>
<p>Mean ± standard deviation over repeats (each repeat uses seed + r for the manifests and the head).
Conv-base seconds: extraction of the cached epochs (cached, no augmentation) or the base run inside
training (on the fly, replay), as measured inside the jobs. End to end: the wall seconds of every job a
run needed (Snakemake's benchmarks: the base check, the validation store, the epochs and their manifests
or the unaugmented store, the training job), each job's start included; the index and pixel store, shared
by every mode, are left out. Speedup: the end-to-end seconds of on the fly divided by the mode's.</p>
{table}
<h2>Learning curves</h2>
<img alt="learning curves" src="data:image/png;base64,{curves_png}">
<h2>Accuracy, disk and time against K</h2>
<img alt="K sweep" src="data:image/png;base64,{sweep_png}">
<h2>Fine-tuning</h2>
{finetune}
<h2>Replay check</h2>
{replay}
<h2>Exported head</h2>
{selection}
<h2>Variants</h2>
{variants}
<h2>Data left out</h2>
{skipped}
<h2>Limits of the method</h2>
<ul>{limits}</ul>
<h2>Provenance</h2>
<details><summary>what made the cached features (weights, versions, dtype)</summary>
<pre>{provenance}</pre></details>
<details><summary>configuration</summary>
<pre>{config}</pre></details>
</body></html>
"""

# The largest difference of any metric, in any head epoch, between the replay run and the cached
# run it replays for which the replay still counts as reproducing it. Both train on the same stored
# numbers, so only float reassociation separates them.
REPLAY_TOLERANCE = 1e-3


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


def _replay_html(summaries: pd.DataFrame, metrics: dict, k_main: int, dtype: str) -> str:
    def main_run(mode):
        runs = summaries[(summaries["mode"] == mode) & (summaries["k"] == k_main) & (summaries["repeat"] == 0)]
        return runs["run"].iloc[0] if len(runs) else None

    check = next(m for m in MODES.values() if m.checks)
    cached_run, replay_run = main_run(check.checks), main_run(check.name)
    if cached_run is None or replay_run is None:
        return f"<p>No {check.name} run in <code>train.modes</code>.</p>"
    verdict = replay_verdict(metrics[cached_run], metrics[replay_run])
    word = "reproduces" if verdict.reproduces else "does NOT reproduce"
    return (
        f"<p>The replay run (conv base on the fly, with the manifest's numbers, cast to "
        f"{html.escape(dtype)}) <b>{word}</b> the cached run (K={k_main}, repeat 0): "
        f"largest difference over {len(metrics[cached_run])} head epochs "
        f'<span id="replay-max-diff">{verdict.largest:.3g}</span> (tolerance {verdict.tolerance:g}).</p><ul>'
        + "".join(f"<li>{html.escape(k)}: {v:.3g}</li>" for k, v in verdict.differences.items()) + "</ul>"
    )


def sweep_figure(table: pd.DataFrame, select_on: str):
    """Mean of the selection metric against each swept key (one panel per key, other keys pooled)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def _selection_html(selection: dict | None, table: pd.DataFrame | None) -> str:
    if selection is None:
        return "<p>No head selection.</p>"
    select_on = selection["select_on"]
    parts = [f"<p>The exported model's head: <b>{html.escape(selection['point'])}</b>, repeat 0 at head epoch "
             f"{selection['epoch'] + 1} (validation accuracy {selection['val_accuracy_at_epoch']:.3f}); "
             f"{html.escape(selection['why'])}.</p>"]
    if table is not None and len(table) > 1:
        parts.append(
            f"<p><b>Optimistic:</b> the head was chosen among {len(table)} points on the validation set, so "
            "its validation accuracy overstates what it does on new images; <code>data.test_dir</code> "
            "scores it on images no choice has seen.</p>")
        head = (f"<tr><th>point</th><th>chosen</th><th>repeats</th><th>{select_on} mean ± sd</th>"
                "<th>best val acc (mean)</th><th>best epoch (repeat 0)</th><th>head s</th><th>parameters</th></tr>")
        rows = "".join(
            f'<tr data-point="{html.escape(r["point"])}"><td>{html.escape(r["point"])}</td>'
            f'<td>{"✔" if r["chosen"] else ""}</td><td>{int(r["repeats"])}</td>'
            f'<td>{_mean_sd(r[f"{select_on}_mean"], r[f"{select_on}_sd"] if r["repeats"] > 1 else None, 4)}</td>'
            f'<td>{r["best_val_accuracy_mean"]:.3f}</td><td>{int(r["best_epoch"]) + 1}</td>'
            f'<td>{r["head_seconds"]:.1f}</td><td>{int(r["head_parameters"])}</td></tr>'
            for r in table.to_dict("records"))
        parts.append(f'<table id="sweep">{head}{rows}</table>')
        parts.append(f'<img alt="head sweep" src="data:image/png;base64,{_png(sweep_figure(table, select_on))}">')
    return "".join(parts)


def variant_table(default: pd.DataFrame, variants: dict[str, list]) -> pd.DataFrame:
    """One row per cache (the default and each variant): cached runs of K = their cache.epochs,
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
            "total_seconds": float(group["total_seconds"].mean()),
            "disk_bytes": float(group["disk_bytes"].mean()),
        })
    return pd.DataFrame(rows)


def _variants_html(summaries: pd.DataFrame, k_main: int, variants: dict) -> str:
    if not variants:
        return "<p>No <code>variants</code>.</p>"
    default = summaries[(summaries["mode"] == CACHE_MODE.name) & (summaries["k"] == k_main)]
    table = variant_table(default, variants)
    head = ("<tr><th>cache</th><th>dtype</th><th>K</th><th>repeats</th><th>final val acc</th><th>best val acc</th>"
            "<th>conv + head s</th><th>cache on disk</th></tr>")
    rows = "".join(
        f'<tr data-variant="{html.escape(r["cache"])}"><td>{html.escape(r["cache"])}</td>'
        f'<td>{html.escape(r["dtype"])}</td><td>{r["k"]}</td>'
        f'<td>{r["repeats"]}</td><td>{_mean_sd(r["final_val_accuracy_mean"], r["final_val_accuracy_sd"])}</td>'
        f'<td>{r["best_val_accuracy_mean"]:.3f}</td><td>{r["total_seconds"]:.1f}</td>'
        f'<td>{_bytes(r["disk_bytes"])}</td></tr>'
        for r in table.to_dict("records"))
    return ("<p>The cached runs (K = each cache's <code>cache.epochs</code>) of the default cache and of each "
            "variant (results/variants/&lt;name&gt;/), with the same head and seeds.</p>"
            f'<table id="variants">{head}{rows}</table>')


def finetune_table(summaries: pd.DataFrame, k_main: int) -> pd.DataFrame:
    """One row per mode (cached of K = cache.epochs): head-only and fine-tuned best validation
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
            "head_seconds_per_epoch": float(group["head_seconds_per_epoch"].mean()),
            "finetune_seconds_per_epoch": float(group["finetune_seconds_per_epoch"].mean()),
            "disk_bytes": float(group["disk_bytes"].mean()),
        })
    return pd.DataFrame(rows)


def _finetune_html(summaries: pd.DataFrame, k_main: int, base_info: dict | None) -> str:
    if "split" not in summaries.columns or summaries["split"].isna().all():
        return "<p>No <code>conv_base.split</code>: the runs train the head only.</p>"
    table = finetune_table(summaries, k_main)
    first = summaries.iloc[0]
    parts = [f"<p>The base is split at <code>{html.escape(str(first['split']))}</code>. Each run trains the head "
             f"for {int(first['head_epochs'])} epochs with the top frozen (head only), then the top and the head "
             f"for {int(first['finetune_epochs'])} epochs at learning rate {first['finetune_learning_rate']:g} "
             "(BatchNorm layers frozen); best validation accuracy of each phase, mean over repeats.</p>"]
    if base_info and "bottom_flops_share" in base_info:
        parts.append(
            f'<p id="split-share">The bottom (cached, run once per cached epoch) holds '
            f'{100 * base_info["bottom_flops_share"]:.1f}% of the base\'s forward FLOPs (conv and dense layers) '
            f'and {100 * base_info["bottom_parameter_share"]:.1f}% of its parameters; activations at the split take '
            f'{_bytes(base_info["bytes_per_sample_epoch"])} per sample-epoch as {html.escape(base_info["storage_dtype"])}.</p>')
    speed = {r["mode"]: r["finetune_seconds_per_epoch"] for r in table.to_dict("records")}
    cached, baseline = speed.get(CACHE_MODE.name), speed.get(SPEED_BASELINE.name)
    if cached and baseline is not None:
        parts.append(f'<p id="finetune-speed">Fine-tuning epoch: {CACHE_MODE.name} {cached:.2f} s, '
                     f'{SPEED_BASELINE.title} {baseline:.2f} s ({baseline / cached:.1f}× faster cached).</p>')
    head = ("<tr><th>mode</th><th>repeats</th><th>head only: best val acc</th><th>fine-tuned: best val acc</th>"
            "<th>head s/epoch</th><th>fine-tune s/epoch</th><th>cache on disk</th></tr>")
    rows = "".join(
        f'<tr data-mode="{r["mode"]}"><td>{html.escape(MODE_TITLES[r["mode"]])}</td><td>{r["repeats"]}</td>'
        f'<td>{r["head_only_best_val_accuracy"]:.3f}</td><td>{r["finetuned_best_val_accuracy"]:.3f}</td>'
        f'<td>{r["head_seconds_per_epoch"]:.2f}</td><td>{r["finetune_seconds_per_epoch"]:.2f}</td>'
        f'<td>{_bytes(r["disk_bytes"])}</td></tr>'
        for r in table.to_dict("records"))
    parts.append(f'<table id="finetune">{head}{rows}</table>')
    parts.append("<p>Activations at the split are larger than the base's output; a variant with "
                 "<code>cache: {dtype: uint8}</code> stores them in about half the bytes of float16, and the "
                 "variants table shows what that does to accuracy.</p>")
    return "".join(parts)


def _test_html(scores: dict | None) -> str:
    if scores is None:
        return "<p>No test images (<code>data.test_dir</code>).</p>"
    per_class = ", ".join(f"{html.escape(k)} {v:.3f}" for k, v in scores["per_class"].items())
    return (f'<h3>Test images</h3><p>Scored once, by the exported model only (never trained on, never used to '
            f'choose): accuracy <b id="test-accuracy">{scores["accuracy"]:.4f}</b> on {scores["n"]} images '
            f"({per_class}).</p>")


def _write_png(path, png: str) -> None:
    if path:
        with atomic_path(path) as tmp:
            tmp.write_bytes(base64.b64decode(png))


def write_report(run_dirs, store_attrs: dict, config: dict, out_html, out_table=None, out_curves=None,
                 out_sweep=None, skipped: pd.DataFrame | None = None, selection: dict | None = None,
                 sweep_table: pd.DataFrame | None = None, test_scores: dict | None = None,
                 variants: dict | None = None, base_info: dict | None = None,
                 benchmarks_root=None, extraction_groups=None) -> pd.DataFrame:
    """Write the HTML report (and optionally the table as CSV and the plots as PNG); return the table.

    benchmarks_root: the folder whose results/benchmarks hold the jobs' benchmarks (see
    :mod:`augcache.costs`), with extraction_groups the epochs of each extraction job of the plan;
    without it the times are those measured inside the jobs."""
    summaries, metrics = load_runs(run_dirs)
    data_seconds, costs = float("nan"), None
    if benchmarks_root is not None:
        from augcache.costs import account
        from augcache.settings import Settings

        costs = account(Settings(config), summaries, extraction_groups, benchmarks_root)
        data_seconds = costs.data_seconds
        summaries = summaries.merge(costs.runs, on="run", how="left")
    table = mode_table(summaries)
    k_main = int(config["cache"]["epochs"])
    curves_png = _png(curves_figure(summaries, metrics, k_main))
    sweep_png = _png(k_figure(table))
    side = side_by_side_table(table, k_main)
    side_png = _png(side_by_side_figure(side)) if len(side) >= 2 else None
    _write_png(out_curves, curves_png)
    _write_png(out_sweep, sweep_png)
    if out_table:
        write_csv(out_table, table)
    first = summaries.iloc[0]
    provenance = {k: store_attrs[k] for k in sorted(store_attrs)
                  if k.endswith("_version") or k in ("weights_sha256", "weights_file_sha256",
                                                     "base_architecture", "base_weights", "dtype")}
    page = PAGE.format(
        headline=html.escape(" ".join(filter(None, [headline(table, k_main, data_seconds), verdict(side)]))),
        side_by_side=_side_by_side_html(side, side_png),
        reuse=_reuse_html(costs),
        n_train=int(first["n_train"]),
        classes=html.escape(", ".join(first["classes"])),
        head_epochs=int(first["head_epochs"]),
        bytes_per=store_attrs.get("bytes_per_sample_epoch", "?"),
        dtype=html.escape(str(store_attrs.get("dtype", ""))),
        table=_table_html(table),
        curves_png=curves_png,
        sweep_png=sweep_png,
        replay=_replay_html(summaries, metrics, k_main, config["cache"]["dtype"]),
        finetune=_finetune_html(summaries, k_main, base_info),
        skipped=_skipped_html(skipped),
        selection=_selection_html(selection, sweep_table) + _test_html(test_scores),
        variants=_variants_html(summaries, k_main, variants or {}),
        limits="".join(f"<li>{html.escape(text)}</li>" for text in LIMITS),
        provenance=html.escape(json.dumps(provenance, indent=2, default=str)),
        config=html.escape(json.dumps(config, indent=2, sort_keys=True, default=str)),
    )
    write_text_atomic(out_html, page)
    return table
