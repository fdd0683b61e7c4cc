"""The report's evaluation sections: test-time augmentation per mode, the k-NN classifier's rows
of the side-by-side table, and the exported head per class (recall, confusion matrices)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from augcache.evaluation.paired import paired_bootstrap
from augcache.report.figures import confusion_figure, png
from augcache.report.tables import mean_sd, size_text
from augcache.training.modes import MODES

SCORES = ("accuracy", "tta_accuracy", "macro_accuracy", "tta_macro_accuracy")


def tta_section(evaluation: dict | None, k_main: int) -> dict | None:
    """Each mode's (at K = k_main) final and best head, with and without the test-time views:
    accuracy and macro-averaged accuracy, mean ± sd over repeats; None without eval.tta_views."""
    if not evaluation or not evaluation.get("tta_views"):
        return None
    runs = pd.DataFrame(evaluation["runs"])
    runs = runs[runs["mode"].notna() & ~runs["run"].str.contains("/sweep/")]
    if "fold" in runs and runs["fold"].notna().any():  # eval.folds: the fold runs (not the refit head)
        runs = runs[runs["fold"].notna()]
    rows = []
    for mode in MODES.values():
        found = runs[(runs["mode"] == mode.name) & ((runs["k"] == k_main) if mode.uses_k else True)]
        for which in ("final", "best"):
            group = found[found["head"] == which]
            if group.empty:
                continue
            sd = (lambda c: float(group[c].std(ddof=1)))
            rows.append({"mode": mode.name, "head": which, "title": mode.title, "repeats": len(group),
                         **{c: mean_sd(float(group[c].mean()), sd(c)) for c in SCORES}, "gain": _gain(group)})
    return {"views": evaluation["tta_views"], "k": k_main, "rows": rows}


def _gain(group: pd.DataFrame) -> str:
    """Accuracy with the views minus without, paired over the same images and heads, with its 95 %
    interval (:func:`augcache.evaluation.paired.paired_bootstrap`); the mean difference alone for
    an evaluation of an earlier version, which kept no image's outcome."""
    if "correct" not in group or group["correct"].isna().any():
        return f"{float((group['tta_accuracy'] - group['accuracy']).mean()):+.3f}"
    if "fold" in group and group["fold"].notna().all():  # each repeat's folds together: every labelled image
        group = group.sort_values(["repeat", "fold"])
        per_repeat = [g for _, g in group.groupby("repeat", sort=True)]
        found = paired_bootstrap(*(np.array([sum(g[c].tolist(), []) for g in per_repeat])
                                   for c in ("tta_correct", "correct")))
        return f"{found.mean:+.3f} ({found.low:+.3f} to {found.high:+.3f})"
    found = paired_bootstrap(np.array(group["tta_correct"].tolist()), np.array(group["correct"].tolist()))
    return f"{found.mean:+.3f} ({found.low:+.3f} to {found.high:+.3f})"


def knn_rows(knn: dict | None, costs=None) -> list[dict]:
    """The k-NN classifier's rows of the side-by-side table, one per bank: validation accuracy
    (deterministic: no spread), seconds end to end as a run's (the jobs its bank and the
    validation store needed, and its share of the k-NN job, start included: see
    :meth:`augcache.report.costs.Account.knn_bank_seconds`; without the jobs' account, the classifier's
    seconds and those measured inside the extraction jobs), the bank's bytes on disk."""
    if not knn:
        return []
    classifier = {bank["bank"]: bank["seconds"] for bank in knn["banks"]}
    counted = costs is not None and bool(costs.knn_seconds)

    def seconds(bank):
        if counted:
            return costs.knn_bank_seconds(bank["bank"], classifier)
        return bank["seconds"] + bank["extraction_seconds"]

    return [{"mode": "knn", "bank": bank["bank"], "title": f"k-NN (k={knn['k']}, temperature {knn['temperature']:g}), {bank['bank']} bank",
             "repeats": 1, "value": repr(bank["accuracy"]), "accuracy": f"{bank['accuracy']:.3f}",
             "macro": f"{bank['macro_accuracy']:.3f}", "paired": "", "seconds": f"{seconds(bank):.1f}",
             "disk": size_text(bank["disk_bytes"])} for bank in knn["banks"]]


def _recall(report: dict | None, name: str) -> str:
    if not report or report["recall"].get(name) is None:
        return ""
    return f"{report['recall'][name]:.3f}"


def classes_section(val: dict | None, val_tta: dict | None, test: dict | None) -> dict | None:
    """The exported head per class on the validation images (and their test-time views) and on
    the test images: recall and count of each class, accuracy against macro-averaged accuracy, and
    the confusion matrices as one figure; None without the validation scores."""
    if not val:
        return None
    test = test if test and "recall" in test else None  # scores written before per-class recall was
    test_tta = (test or {}).get("tta")
    reports = {"validation": val, "validation, test-time views": val_tta, "test": test,
               "test, test-time views": test_tta}
    reports = {title: r for title, r in reports.items() if r}
    rows = [{"name": name, "val_count": val["count"][name], "val": _recall(val, name),
             "val_tta": _recall(val_tta, name), "test_count": (test or {}).get("count", {}).get(name, ""),
             "test": _recall(test, name), "test_tta": _recall(test_tta, name)} for name in val["classes"]]
    worst = min(((r, n) for n, r in val["recall"].items() if r is not None), default=None)
    return {"rows": rows, "tta": val_tta is not None, "test": test is not None, "test_tta": test_tta is not None,
            "totals": [{"title": title, "accuracy": f"{r['accuracy']:.3f}", "macro": f"{r['macro_accuracy']:.3f}",
                        "n": r["n"]} for title, r in reports.items()],
            "worst": None if worst is None else {"name": worst[1], "recall": f"{worst[0]:.3f}"},
            "png": png(confusion_figure(reports))}
