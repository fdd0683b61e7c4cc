"""The HTML report: what each mode bought on this data, from the training runs' summaries and the
jobs' benchmarks.

The page's shape is the template ``augcache/report/templates/report.html`` (Jinja2, every value escaped);
this module computes each section's numbers in a function of its own, the tables live in
:mod:`augcache.report.tables`, the plots in :mod:`augcache.report.figures`, the side-by-side
comparison in :mod:`augcache.report.side_by_side`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd

from augcache.core.atomic import write_csv, write_text_atomic
from augcache.jobs.spellings import respell
from augcache.jobs.table import filed_as
from augcache.report.compared import final_outcomes, knn_paired, paired
from augcache.report.evaluation import classes_section, knn_rows, tta_section
from augcache.report.figures import curves_figure, k_figure, png, sweep_figure, write_png
from augcache.report.headline import headline
from augcache.training.modes import CACHE_MODE, MODES, SIDE_BY_SIDE, SPEED_BASELINE
from augcache.report.tables import (
    MODE_TITLES,
    SPEEDUP,
    finetune_table,
    load_runs,
    mean_sd,
    mean_sd_or_blank,
    mode_table,
    replay_verdict,
    size_text,
    variant_table,
)
from augcache.report.side_by_side import against_reference, row_key, row_title, side_by_side_figure, side_by_side_table, verdict

TEMPLATE = "report.html"

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

# --- the sections: each one's numbers, as the template shows them ---------------------------------


def wall_clock(costs) -> tuple | None:
    """(wall-clock seconds, job seconds added up, jobs) of the last runs of the report's jobs."""
    if costs is None:
        return None
    return costs.wall_seconds, costs.last_run_seconds, len(costs.jobs)


def reuse_section(costs) -> dict | None:
    """Which jobs' outputs came from the reuse entries in their last run, and what those runs took."""
    if costs is None:
        return None
    reused = costs.reused
    return {
        "jobs": len(costs.jobs),
        "last_run_seconds": f"{costs.last_run_seconds:.0f}",
        "reused": [filed_as(name) for name in sorted(reused)],
        "seconds": f"{sum(c.seconds for c in reused.values()):.0f}",
        "reused_last_run_seconds": f"{sum(c.last_run_seconds for c in reused.values()):.0f}",
    }


def side_by_side_section(side: pd.DataFrame, knn: dict | None = None, costs=None, outcomes: dict | None = None) -> dict:
    """The side-by-side table's rows (the k-NN classifier's after the modes', with eval.knn), each
    mode's paired difference against the reference, its verdict and its figure."""
    reference, differences = compared = against_reference(side, outcomes or {})
    key = row_key(reference) if differences else None
    knn_differences = {bank["bank"]: knn_paired(bank, outcomes or {}, key) for bank in knn["banks"]} \
        if key and knn else {}
    return {
        "compared": ", ".join([m.title.split(" (")[0] for m in SIDE_BY_SIDE][:-1]) + " and "
                    + SIDE_BY_SIDE[-1].title.split(" (")[0],
        "verdict": verdict(side, compared=compared),
        "reference": row_title(reference) if differences else None,
        # which interval the paired cells hold, in words
        "how": next(iter(differences.values())).how if differences else None,
        "reference_key": key,
        "rows": [{"mode": row["mode"], "title": row_title(row), "repeats": row["repeats"],
                  "value": repr(row["accuracy_mean"]), "accuracy": mean_sd(row["accuracy_mean"], row["accuracy_sd"]),
                  "macro": mean_sd_or_blank(row["macro_mean"], row["macro_sd"]),
                  "paired": _interval(differences.get(row["mode"])),
                  "seconds": f"{row['seconds']:.1f}", "disk": size_text(row["disk_bytes"])}
                 for row in side.to_dict("records")]
                + [dict(row, paired=_interval(knn_differences.get(row["bank"]))) for row in knn_rows(knn, costs)],
        "png": png(side_by_side_figure(side)) if len(side) >= 2 else None,
    }


def _interval(d) -> str:
    if d is None or np.isnan(d.low):
        return ""
    return f"{100 * d.mean:+.1f} ({100 * d.low:+.1f} to {100 * d.high:+.1f})"


def _paired_cell(outcomes: dict, key: tuple, reference: tuple) -> dict:
    """A modes-table row's paired difference against the reference (empty for the reference itself,
    or where a difference has no interval: one run of each)."""
    d = None if key == reference else paired(outcomes, key, reference)
    if d is None or np.isnan(d.low):
        return _cell("paired", None, "")
    return _cell("paired", d.mean, _interval(d))


def _cell(column: str, value, text: str) -> dict:
    """A cell of the modes table: its column, its number (data-value) and its text."""
    data = "" if value is None or (isinstance(value, float) and np.isnan(value)) else repr(value)
    return {"column": column, "value": data, "text": text}


def modes_section(table: pd.DataFrame, outcomes: dict | None = None, reference: tuple | None = None) -> list[dict]:
    """The modes table's rows: one per mode and K, every number also as data-value; with the
    reference of the side-by-side table ((mode, K)), each row's paired difference against it."""
    rows = []
    for row in table.to_dict("records"):
        k = "" if row["k"] is None or pd.isna(row["k"]) else str(int(row["k"]))
        end_to_end, speedup = row["end_to_end_seconds"], row[SPEEDUP]
        rows.append({"mode": row["mode"], "k": k, "title": MODE_TITLES.get(row["mode"], row["mode"]), "cells": [
            _cell("k", None if k == "" else int(k), k),
            _cell("repeats", int(row["repeats"]), str(int(row["repeats"]))),
            _cell("final_val_accuracy_mean", row["final_val_accuracy_mean"],
                  mean_sd(row["final_val_accuracy_mean"], row["final_val_accuracy_sd"])),
            _cell("final_val_macro_accuracy_mean", row["final_val_macro_accuracy_mean"],
                  mean_sd_or_blank(row["final_val_macro_accuracy_mean"], row["final_val_macro_accuracy_sd"])),
            _cell("best_val_accuracy_mean", row["best_val_accuracy_mean"],
                  mean_sd(row["best_val_accuracy_mean"], row["best_val_accuracy_sd"])),
            *([_paired_cell(outcomes, (row["mode"], None if k == "" else int(k)), reference)] if reference else []),
            _cell("conv_seconds", row["conv_seconds"], f"{row['conv_seconds']:.1f}"),
            _cell("head_seconds", row["head_seconds"], f"{row['head_seconds']:.1f}"),
            _cell("total_seconds", row["total_seconds"], f"{row['total_seconds']:.1f}"),
            _cell("end_to_end_seconds", end_to_end, "" if np.isnan(end_to_end) else f"{end_to_end:.1f}"),
            _cell(SPEEDUP, speedup, "" if np.isnan(speedup) else f"{speedup:.1f}×"),
            _cell("disk_bytes", row["disk_bytes"], size_text(row["disk_bytes"])),
        ]})
    return rows


def _main_run(summaries: pd.DataFrame, mode: str, k_main: int) -> str | None:
    runs = summaries[(summaries["mode"] == mode) & (summaries["k"] == k_main) & (summaries["repeat"] == 0)]
    if "fold" in runs:  # with eval.folds, the check's fold (0)
        runs = runs[runs["fold"].isna() | (runs["fold"] == 0)]
    return runs["run"].iloc[0] if len(runs) else None


def folds_section(summaries: pd.DataFrame, costs, selection: dict | None) -> dict | None:
    """With eval.folds: the folds and repeats, what each mode's fold runs cost together (every job
    they needed once), and the head refit on every labelled image for export; None without."""
    if "fold" not in summaries or summaries["fold"].isna().all():
        return None
    folds = summaries.dropna(subset=["fold"])
    totals = costs.mode_seconds if costs is not None else {}
    refit = {}
    head = Path((selection or {}).get("head") or "")
    if (head.parent / "summary.json").is_file():
        refit = json.loads((head.parent / "summary.json").read_text()).get("refit") or {}
    return {"folds": int(folds["folds"].max()), "repeats": int(folds["repeat"].nunique()),
            "n_train": int(folds["n_train"].iloc[0]),
            "costs": [{"title": MODE_TITLES[m] + (f", K={k}" if k is not None else ""), "seconds": f"{s:.0f}",
                       "runs": int(((folds["mode"] == m) & ((folds["k"] == k) if k is not None else True)).sum())}
                      for (m, k), s in totals.items()],
            "refit_epoch": None if refit.get("epoch") is None else int(refit["epoch"]) + 1,
            "refit_runs": refit.get("fold_runs")}


def folds_cost(costs, k_main: int, folds: dict | None) -> str:
    """With eval.folds (folds: :func:`folds_section`), what cross-validation cost cached augmentation
    and on the fly, all folds and repeats together (every job their runs needed once), in the
    headline; "" without."""
    if costs is None or folds is None:
        return ""
    cached = costs.mode_seconds.get((CACHE_MODE.name, k_main))
    baseline = costs.mode_seconds.get((SPEED_BASELINE.name, None))
    if cached is None or baseline is None or cached <= 0:
        return ""
    return (f"Cross-validated, cached augmentation's runs took {cached:.0f} s together and on the fly's "
            f"{baseline:.0f} s ({_times(baseline / cached)}): the cache "
            "is extracted once for every fold, the base runs on the fly in every fold.")


def _times(ratio: float) -> str:
    return f"{ratio:.1f}× faster" if ratio >= 1 else f"{1 / ratio:.1f}× slower"


def replay_section(summaries: pd.DataFrame, metrics: dict, k_main: int, dtype: str) -> dict:
    """Does the checking mode's main run reproduce the run it checks, and by how much."""
    check = next(m for m in MODES.values() if m.checks)
    cached_run, replay_run = _main_run(summaries, check.checks, k_main), _main_run(summaries, check.name, k_main)
    if cached_run is None or replay_run is None:
        return {"ran": False, "check": check.name}
    result = replay_verdict(metrics[cached_run], metrics[replay_run])
    return {"ran": True, "dtype": dtype, "k": k_main, "epochs": len(metrics[cached_run]),
            "word": "reproduces" if result.reproduces else "does NOT reproduce",
            "largest": f"{result.largest:.3g}", "tolerance": f"{result.tolerance:g}",
            "differences": [(name, f"{value:.3g}") for name, value in result.differences.items()]}


def finetune_section(summaries: pd.DataFrame, k_main: int, base_info: dict | None) -> dict | None:
    """Head-only against fine-tuned accuracy per mode, the split's share of the base, the epoch times;
    None without conv_base.split."""
    if "split" not in summaries.columns or summaries["split"].isna().all():
        return None
    table = finetune_table(summaries, k_main)
    first = summaries.iloc[0]
    share = None
    if base_info and "bottom_flops_share" in base_info:
        share = {"flops": f"{100 * base_info['bottom_flops_share']:.1f}",
                 "parameters": f"{100 * base_info['bottom_parameter_share']:.1f}",
                 "bytes": size_text(base_info["bytes_per_sample_epoch"]), "dtype": base_info["storage_dtype"]}
    seconds = {r["mode"]: r["finetune_seconds_per_epoch"] for r in table.to_dict("records")}
    cached, baseline = seconds.get(CACHE_MODE.name), seconds.get(SPEED_BASELINE.name)
    speed = None
    if cached and baseline is not None:
        speed = {"cached_name": CACHE_MODE.name, "cached": f"{cached:.2f}", "baseline_title": SPEED_BASELINE.title,
                 "baseline": f"{baseline:.2f}", "ratio": f"{baseline / cached:.1f}"}
    return {
        "split": str(first["split"]), "head_epochs": int(first["head_epochs"]),
        "finetune_epochs": int(first["finetune_epochs"]), "learning_rate": f"{first['finetune_learning_rate']:g}",
        "share": share, "speed": speed,
        "rows": [{"mode": r["mode"], "title": MODE_TITLES[r["mode"]], "repeats": r["repeats"],
                  "head_only": f"{r['head_only_best_val_accuracy']:.3f}",
                  "finetuned": f"{r['finetuned_best_val_accuracy']:.3f}",
                  "macro": mean_sd_or_blank(r["best_head_val_macro_accuracy"], None),
                  "head_seconds": f"{r['head_seconds_per_epoch']:.2f}",
                  "finetune_seconds": f"{r['finetune_seconds_per_epoch']:.2f}", "disk": size_text(r["disk_bytes"])}
                 for r in table.to_dict("records")],
    }


def selection_section(selection: dict | None, table: pd.DataFrame | None) -> dict | None:
    """The exported head's point and epoch, and the sweep's table and figure when it chose among
    several points; None without a selection."""
    if selection is None:
        return None
    select_on = selection["select_on"]
    section = {"point": selection["point"], "epoch": selection["epoch"] + 1,
               "accuracy": f"{selection['val_accuracy_at_epoch']:.3f}", "why": selection["why"],
               "select_on": select_on, "rows": []}
    if table is not None and len(table) > 1:
        section["rows"] = [
            {"point": r["point"], "chosen": bool(r["chosen"]), "repeats": int(r["repeats"]),
             "score": mean_sd(r[f"{select_on}_mean"], r[f"{select_on}_sd"] if r["repeats"] > 1 else None, 4),
             "best": f"{r['best_val_accuracy_mean']:.3f}", "best_epoch": int(r["best_epoch"]) + 1,
             "macro": mean_sd_or_blank(r.get("best_head_val_macro_accuracy_mean", float("nan")), None),
             "head_seconds": f"{r['head_seconds']:.1f}", "parameters": int(r["head_parameters"])}
            for r in table.to_dict("records")]
        section["png"] = png(sweep_figure(table, select_on))
    return section


def test_images_section(scores: dict | None) -> dict | None:
    """The exported model's accuracy on the test images, macro-averaged too, with the test-time
    views where there are some (per class: :func:`augcache.report.evaluation.classes_section`)."""
    if scores is None:
        return None
    tta = scores.get("tta")
    # scores written before macro-averaged accuracy was recorded have none
    macro = f"{scores['macro_accuracy']:.4f}" if "macro_accuracy" in scores else None
    return {"accuracy": f"{scores['accuracy']:.4f}", "n": scores["n"], "macro": macro,
            "tta": None if not tta else {"views": tta["views"], "accuracy": f"{tta['accuracy']:.4f}",
                                         "macro": f"{tta['macro_accuracy']:.4f}"}}


def variants_section(summaries: pd.DataFrame, k_main: int, variants: dict) -> list[dict]:
    """One row per cache: the default's and each variant's cached runs."""
    if not variants:
        return []
    default = summaries[(summaries["mode"] == CACHE_MODE.name) & (summaries["k"] == k_main)]
    return [{"cache": r["cache"], "dtype": r["dtype"], "k": r["k"], "repeats": r["repeats"],
             "accuracy": mean_sd(r["final_val_accuracy_mean"], r["final_val_accuracy_sd"]),
             "macro": mean_sd_or_blank(r["final_val_macro_accuracy_mean"], r["final_val_macro_accuracy_sd"]),
             "best": f"{r['best_val_accuracy_mean']:.3f}", "seconds": f"{r['total_seconds']:.1f}",
             "disk": size_text(r["disk_bytes"])}
            for r in variant_table(default, variants).to_dict("records")]


def skipped_section(skipped: pd.DataFrame | None) -> list[dict]:
    """The files the index left out, and why."""
    if skipped is None or skipped.empty:
        return []
    return [{"path": str(r.path), "reason": str(r.reason)} for r in skipped.itertuples(index=False)]


def provenance_section(store_attrs: dict) -> str:
    """What made the cached features: weights, versions, dtype (JSON)."""
    provenance = {k: store_attrs[k] for k in sorted(store_attrs)
                  if k.endswith("_version") or k in ("weights_sha256", "weights_file_sha256",
                                                     "base_architecture", "base_weights", "dtype")}
    return json.dumps(provenance, indent=2, default=str)


# --- the page -------------------------------------------------------------------------------------


def render(context: dict) -> str:
    """The report page of a context (the sections' values), by the package's template."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("augcache.report", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.get_template(TEMPLATE).render(context)


def write_report(run_dirs, store_attrs: dict, config: dict, out_html, out_table=None, out_curves=None,
                 out_sweep=None, skipped: pd.DataFrame | None = None, selection: dict | None = None,
                 sweep_table: pd.DataFrame | None = None, test_scores: dict | None = None,
                 variants: dict | None = None, base_info: dict | None = None,
                 benchmarks_root=None, extraction_groups=None, val_scores: dict | None = None,
                 evaluation: dict | None = None, knn: dict | None = None, out_confusion=None) -> pd.DataFrame:
    """Write the HTML report (and optionally the table as CSV and the plots as PNG); return the table.

    val_scores: the exported head on the validation store, per class (see
    :func:`augcache.evaluation.scoring.head_class_report`); evaluation: every run's heads with test-time views
    (:func:`augcache.evaluation.scoring.score_heads`); knn: the k-NN classifier (:func:`augcache.evaluation.scoring.score_knn`).

    benchmarks_root: the folder whose results hold the jobs' benchmarks (see
    :mod:`augcache.report.costs`), with extraction_groups the epochs of each extraction job of the plan;
    without it the times are those measured inside the jobs."""
    config = copy.deepcopy(config)
    respell(config)  # a run's config of an earlier version, read as today's
    summaries, metrics = load_runs(run_dirs)
    data_seconds, costs = float("nan"), None
    if benchmarks_root is not None:
        from augcache.report.costs import account
        from augcache.jobs.settings import Settings

        costs = account(Settings(config), summaries, extraction_groups, benchmarks_root)
        data_seconds = costs.data_seconds
        summaries = summaries.merge(costs.runs, on="run", how="left")
    table = mode_table(summaries)
    k_main = int(config["cache"]["k"])
    curves_png = png(curves_figure(summaries, metrics, k_main))
    sweep_png = png(k_figure(table))
    side = side_by_side_table(table, k_main)
    write_png(out_curves, curves_png)
    write_png(out_sweep, sweep_png)
    if out_table:
        write_csv(out_table, table)
    first = summaries.iloc[0]
    with_views = (evaluation or {}).get("exported") if (evaluation or {}).get("tta_views") else None
    per_class = classes_section(val_scores, with_views or None, test_scores)
    if out_confusion and per_class:
        write_png(out_confusion, per_class["png"])
    outcomes = final_outcomes(evaluation)
    side_section = side_by_side_section(side, knn, costs, outcomes)
    folds = folds_section(summaries, costs, selection)
    page = render({
        "headline": " ".join(filter(None, [headline(table, k_main, data_seconds, wall_clock(costs), outcomes),
                                           folds_cost(costs, k_main, folds), side_section["verdict"]])),
        "reuse": reuse_section(costs),
        "n_train": int(first["n_train"]),
        "folds": folds,
        "classes": ", ".join(first["classes"]),
        "head_epochs": int(first["head_epochs"]),
        "bytes_per": store_attrs.get("bytes_per_sample_epoch", "?"),
        "dtype": str(store_attrs.get("dtype", "")),
        "side": side_section,
        "tta": tta_section(evaluation, k_main),
        "per_class": per_class,
        "modes": modes_section(table, outcomes, side_section["reference_key"]),
        "curves_png": curves_png,
        "sweep_png": sweep_png,
        "finetune": finetune_section(summaries, k_main, base_info),
        "replay": replay_section(summaries, metrics, k_main, config["cache"]["dtype"]),
        "selection": selection_section(selection, sweep_table),
        "test": test_images_section(test_scores),
        "variants": variants_section(summaries, k_main, variants or {}),
        "skipped": skipped_section(skipped),
        "limits": LIMITS,
        "provenance": provenance_section(store_attrs),
        "config": json.dumps(config, indent=2, sort_keys=True, default=str),
    })
    write_text_atomic(out_html, page)
    return table
