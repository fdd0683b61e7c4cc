"""Modes compared paired: on the same validation images, repeat r of each with the same seed
(seed + r), so that the difference is the way of training alone. Every verdict of the report (does
cached augmentation pay, which K, which mode wins side by side) reads these differences and their
95 % intervals, from which images each run's final head got right (the evaluation job,
:func:`augcache.evaluation.scoring.score_heads`): on one split a paired bootstrap over the
validation images (:func:`augcache.evaluation.paired.paired_bootstrap`); with eval.folds the
corrected resampled t over the fold differences, fold f of repeat r of each mode trained on the
same rows with the same seed (:func:`augcache.evaluation.paired.corrected_resampled_t`).
"""

from __future__ import annotations

import numpy as np

from augcache.evaluation.paired import Difference, corrected_resampled_t, paired_bootstrap
from augcache.training.modes import CACHE_MODE, MODES


def final_outcomes(evaluation: dict | None) -> dict[tuple, dict[int, list]]:
    """{(mode, K or None): {repeat, or (repeat, fold) with eval.folds: which validation images its
    final head got right}}, the sweep's points left out; empty for an evaluation that kept no
    image's outcome (an earlier version's)."""
    found: dict[tuple, dict[int, list]] = {}
    for row in (evaluation or {}).get("runs", []):
        mode = MODES.get(row.get("mode"))
        if row.get("head") != "final" or "correct" not in row or mode is None or "/sweep/" in row["run"]:
            continue
        k = int(row["k"]) if mode.uses_k else None
        replicate = int(row["repeat"]) if row.get("fold") is None else (int(row["repeat"]), int(row["fold"]))
        found.setdefault((mode.name, k), {})[replicate] = row["correct"]
    return found


def paired(outcomes: dict, a: tuple, b: tuple) -> Difference | None:
    """Run a (mode, K) minus run b over the repeats both ran, paired image by image; None where
    either has no outcome."""
    first, second = outcomes.get(a) or {}, outcomes.get(b) or {}
    common = sorted(set(first) & set(second))
    if not common:
        return None
    if isinstance(common[0], tuple):
        return across_folds(first, second, common)
    return paired_bootstrap([first[r] for r in common], [second[r] for r in common])


def across_folds(first: dict, second: dict, common: list) -> Difference | None:
    """The corrected resampled t of the fold differences of two modes' fold runs ((repeat, fold)
    in common): each fold's accuracy of a minus b; a fold trains on the other folds' images. None
    unless every repeat has the same folds."""
    repeats = sorted({r for r, _ in common})
    folds = sorted({f for _, f in common})
    if len(common) != len(repeats) * len(folds):
        return None
    differences = np.array([[np.mean(first[(r, f)]) - np.mean(second[(r, f)]) for f in folds] for r in repeats])
    scored = np.array([len(first[(r, f)]) for r, f in common])
    n_test = float(scored.mean())
    return corrected_resampled_t(differences, n_train=n_test * (len(folds) - 1), n_test=n_test)


def knn_paired(bank: dict, outcomes: dict, reference: tuple) -> Difference | None:
    """A k-NN bank (:func:`augcache.evaluation.scoring.score_knn`) minus the reference runs, over
    the same images: the classifier has no seed, so on one split its outcome stands beside every
    repeat of the reference; with eval.folds, its folds (of repeat 0's split) beside the
    reference's. None where either kept no outcome."""
    ref = outcomes.get(reference) or {}
    if "fold_correct" in bank:
        mine = {(int(x["repeat"]), int(x["fold"])): x["correct"] for x in bank["fold_correct"]}
    elif "correct" in bank:
        mine = {key: bank["correct"] for key in ref if not isinstance(key, tuple)}
    else:
        return None
    return paired({"knn": mine, "reference": ref}, "knn", "reference")


def points(d: Difference) -> str:
    """A difference in accuracy points with its interval and what it rests on."""
    rests_on = f"{d.folds} folds" if d.folds else f"{d.n} images"
    return (f"{100 * d.mean:+.1f} points, 95 % interval {100 * d.low:+.1f} to {100 * d.high:+.1f}, "
            f"{rests_on} × {d.repeats} repeat{'s' if d.repeats != 1 else ''}")


def compared(d: Difference, other: str) -> str:
    """'more accurate than X', 'less accurate than X' or 'as accurate as X' by the interval."""
    if d.low > 0:
        return f"more accurate than {other}"
    if d.high < 0:
        return f"less accurate than {other}"
    return f"as accurate as {other}"


def resolution(d: Difference) -> str:
    """Where the interval holds 0: the smallest difference this data tells apart from none."""
    if d.excludes_zero() or d.width == 0:
        return ""
    more = "more images would" if d.folds else "more validation images or eval.folds would"
    return f" This data cannot tell apart differences under {100 * max(-d.low, d.high):.1f} points; {more}."


def paired_recommended_k(outcomes: dict, ks: list[int], means: dict[int, float]) -> tuple[int, int] | None:
    """(recommended K, best K): the smallest K whose cached runs are not shown less accurate than the
    best K's (highest mean) by the paired interval; None where a K lacks outcomes."""
    if not all(outcomes.get((CACHE_MODE.name, k)) for k in ks):
        return None
    best = max(ks, key=lambda k: (means[k], -k))
    for k in sorted(ks):
        if k == best:
            return k, best
        d = paired(outcomes, (CACHE_MODE.name, k), (CACHE_MODE.name, best))
        if d is None:
            return None
        if d.high >= 0:
            return k, best
    return best, best
